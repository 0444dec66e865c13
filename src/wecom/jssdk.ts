import { hash } from 'node:crypto'
import { randomHex } from '../random.js'

/** What one JS-SDK signature signs (doc path/90506). */
export interface SignatureInput {
  /** The corp's ticket (wx.config) or the app's (agentConfig). */
  ticket: string
  nonceStr: string
  /** Seconds since the epoch. */
  timestamp: number
  /** The page's full URL; its `#` part, if any, is not signed. */
  url: string
}

/** What `ww.register`'s getConfigSignature and getAgentConfigSignature return (doc path/96947). */
export interface PageSignature {
  /** Seconds since the epoch. */
  timestamp: number
  nonceStr: string
  /** 40 lower-case hex digits. */
  signature: string
}

/** The two tickets a page is signed with: the corp's (get_jsapi_ticket) and the app's (ticket/get). */
export interface PageTickets { jsapi: string, agent: string }

/**
 * sha1 of `jsapi_ticket=TICKET&noncestr=NONCE&timestamp=TS&url=URL`, in hex: the keys in that
 * order and the values as they are, unescaped, as WeCom computes it to check the page's config.
 */
export function signature ({ ticket, nonceStr, timestamp, url }: SignatureInput): string {
  return signed(ticket, nonceStr, timestamp, withoutFragment(url))
}

/**
 * The page at `url` signed for wx.config / ww.register (`config`, the corp's ticket) and for
 * agentConfig (`agentConfig`, the app's ticket): one timestamp in seconds from `now` (epoch ms),
 * and a fresh random nonce each.
 */
export function signPage (url: string, tickets: PageTickets, now: () => number = Date.now): { config: PageSignature, agentConfig: PageSignature } {
  const timestamp = Math.floor(now() / 1000)
  const page = withoutFragment(url)
  // 64 random bits each, drawn at once: a nonce need not be secret, only never repeated.
  const nonces = randomHex(16)
  const configNonce = nonces.slice(0, 16)
  const agentNonce = nonces.slice(16)
  return {
    config: { timestamp, nonceStr: configNonce, signature: signed(tickets.jsapi, configNonce, timestamp, page) },
    agentConfig: { timestamp, nonceStr: agentNonce, signature: signed(tickets.agent, agentNonce, timestamp, page) }
  }
}

function signed (ticket: string, nonceStr: string, timestamp: number, page: string): string {
  // The one-shot hash (Node >= 20.12): a Hash object per signature cost more than the sha1 itself.
  return hash('sha1', `jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${page}`, 'hex')
}

function withoutFragment (url: string): string {
  const hash = url.indexOf('#')
  return hash === -1 ? url : url.slice(0, hash)
}
