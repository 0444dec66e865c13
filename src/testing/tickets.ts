/**
 * The JS-SDK's tickets: the corp's jsapi_ticket (get_jsapi_ticket, for wx.config and
 * ww.register's getConfigSignature) and each app's agent_config ticket (ticket/get, for
 * agentConfig), with WeCom's hourly limits (doc 90506), and the signature a page's JS-SDK checks.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { SimulatorClock } from './time.js'
import type { Reply } from './wire.js'

const HOUR_MS = 3_600_000
/** A ticket lives 7200 s; asking again while it lives hands back the same one, as gettoken does. */
const TICKET_LIFE_MS = 7200 * 1000
/** Doc 90506: the corp ticket 400 an hour per corp and 100 per app; the app ticket 100 per app. */
const CORP_TICKETS_PER_CORP = 400
const CORP_TICKETS_PER_APP = 100
const APP_TICKETS_PER_APP = 100

/**
 * sha1 of `jsapi_ticket=T&noncestr=N&timestamp=TS&url=URL`, keys in that order, `url` the page's
 * URL without its `#` part; hex. What WeCom's JS-SDK checks for both tickets.
 */
export function jsapiSignature (ticket: string, nonceStr: string, timestamp: number | string, url: string): string {
  const hashless = url.split('#', 1)[0]
  return createHash('sha1').update(`jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${hashless}`).digest('hex')
}

export class JsapiTickets {
  /** The live ticket of each corp (key: corpId) or app (key: corpId NUL agentId). */
  private readonly tickets = new Map<string, { ticket: string, expiresAt: number }>()
  /** When each limit's calls were answered, within the last hour, oldest first. */
  private readonly answered = new Map<string, number[]>()

  constructor (private readonly clock: SimulatorClock) {}

  /** get_jsapi_ticket for the token's app, or 45009 past the corp's or the app's hourly limit. */
  corpTicket (corpId: string, agentId: number): Reply {
    return this.hand(`corp\u0000${corpId}`, [
      [`corp\u0000${corpId}`, CORP_TICKETS_PER_CORP],
      [`corp-app\u0000${corpId}\u0000${agentId}`, CORP_TICKETS_PER_APP],
    ])
  }

  /** ticket/get?type=agent_config for the token's app, or 45009 past its hourly limit. */
  appTicket (corpId: string, agentId: number): Reply {
    return this.hand(`app\u0000${corpId}\u0000${agentId}`, [[`app\u0000${corpId}\u0000${agentId}`, APP_TICKETS_PER_APP]])
  }

  /** The live corp ticket, if one was handed out and has not expired. */
  liveCorpTicket (corpId: string): string | undefined {
    return this.live(`corp\u0000${corpId}`)
  }

  /** The live app ticket, if one was handed out and has not expired. */
  liveAppTicket (corpId: string, agentId: number): string | undefined {
    return this.live(`app\u0000${corpId}\u0000${agentId}`)
  }

  private live (key: string): string | undefined {
    const state = this.tickets.get(key)
    return state !== undefined && state.expiresAt > this.clock.now() ? state.ticket : undefined
  }

  /**
   * A call counts against every limit once answered; a refused call counts against none. The
   * window slides: a call is answered while fewer than the limit were in the hour before it.
   */
  private hand (key: string, limits: Array<[string, number]>): Reply {
    const at = this.clock.now()
    for (const [limit, most] of limits) {
      const times = (this.answered.get(limit) ?? []).filter((time) => time > at - HOUR_MS)
      this.answered.set(limit, times)
      if (times.length >= most) return { errcode: 45009 }
    }
    for (const [limit] of limits) this.answered.get(limit)!.push(at)
    const current = this.tickets.get(key)
    if (current !== undefined && current.expiresAt - at >= 1000) {
      return { errcode: 0, ticket: current.ticket, expires_in: Math.floor((current.expiresAt - at) / 1000) }
    }
    const ticket = randomBytes(48).toString('base64url')
    this.tickets.set(key, { ticket, expiresAt: at + TICKET_LIFE_MS })
    return { errcode: 0, ticket, expires_in: TICKET_LIFE_MS / 1000 }
  }
}
