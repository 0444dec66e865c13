/**
 * What WeCom issues when someone opens an app's page (OAuth2 inside WeCom, or the PC web login):
 * single-use codes bound to corp, app, person and scope, and the user_tickets of
 * snsapi_privateinfo. Both expire on the simulator clock.
 */
import type { Directory } from './directory.js'
import { Expiring } from './expiring.js'
import type { SimulatorClock } from './time.js'

/** snsapi_base: silent, the userid only; snsapi_privateinfo: the member agrees, and a user_ticket comes too. */
export type WebScope = 'snsapi_base' | 'snsapi_privateinfo'

/** Who opened the page: a member of the corp, or an outsider known by openid. */
export type WebVisitor = { userid: string } | { openid: string }

export interface WebCode {
  corpId: string
  /** The app the page named; undefined when it named none (snsapi_base): any app of the corp redeems it. */
  agentId: number | undefined
  visitor: WebVisitor
  scope: WebScope
  /** A third-party suite's page (appid the SuiteID): only the suite's token redeems it, with getuserinfo3rd. */
  suiteId?: string
}

export interface UserTicket {
  corpId: string
  agentId: number | undefined
  userid: string
  suiteId?: string
}

/** WeCom's figures: a user_ticket lives 1800 s (doc 91023). */
const USER_TICKET_LIFE_MS = 1800 * 1000

export class WebLogins {
  private readonly codes: Expiring<WebCode>
  private readonly userTickets: Expiring<UserTicket>

  /** `codeLifeMs`: how long a code lives, in milliseconds (the simulator's codeTtl). */
  constructor (clock: SimulatorClock, private readonly directory: Directory, codeLifeMs: number) {
    this.codes = new Expiring(clock, codeLifeMs)
    this.userTickets = new Expiring(clock, USER_TICKET_LIFE_MS)
  }

  /**
   * A code for the visitor, as the page's redirect carries it (at most 512 bytes: 43 here).
   * @throws SimulatorNotFoundError for an unknown corp, member or outsider (the caller checked the app)
   */
  issueCode (code: WebCode): string {
    const { corpId, visitor } = code
    this.directory.corp(corpId)
    if ('userid' in visitor) this.directory.member(corpId, visitor.userid)
    else this.directory.outsider(corpId, visitor.openid)
    return this.codes.issue({ ...code, visitor: { ...visitor } }, 32)
  }

  /** Spends the code: what it was issued for, or undefined (unknown, spent or expired). */
  redeem (code: string): WebCode | undefined {
    return this.codes.take(code)
  }

  /** A user_ticket for the member, valid 1800 s (at most 512 bytes: 86 here). */
  issueUserTicket (ticket: UserTicket): string {
    return this.userTickets.issue({ ...ticket }, 64)
  }

  /** The live user_ticket's member; it may be used again until it expires. */
  userTicket (userTicket: string): UserTicket | undefined {
    return this.userTickets.get(userTicket)
  }
}
