/**
 * What each WeCom errcode means for a login server (global table, doc 90313). Only the class
 * drives behaviour; the explanation is what the log line says, so an operator can act on it.
 *
 * - retry:     the one code WeCom says to retry (-1, system busy)
 * - token:     the access token is stale or wrong: refresh once, retry once
 * - code:      the login code is bad: the client must call wx.qy.login again
 * - forbidden: the member may not use the app
 * - limited:   rate or concurrency limits: fail fast, do not hammer
 * - config:    this server is misconfigured; retrying cannot help
 *
 * What is remembered, so that a bad day does not become a flood of calls (src/wecom/refusals.ts):
 * - a `config` or `token` answer to gettoken, for the app (corpId + secret), `api.refusals.config` ms:
 *   gettoken carries nothing of the client's, so the answer holds for every login;
 * - an errcode marked `server` on any endpoint, likewise: it speaks of this server (its IP, its
 *   corpid, its secret), not of the code a client sent. Other config answers to jscode2session
 *   (48002, 90206) are not remembered: a client can provoke them with a code of another mini
 *   program, and must not lock every member out by doing so;
 * - a `token` answer to a token fetched for that very retry, for the app and endpoint: the token is
 *   fresh, so the app itself is refused;
 * - a `limited` answer, for the corp and endpoint: 45009 for `api.refusals.frequency` ms (WeCom's
 *   block lasts its minute or hour window), 45033 for `api.refusals.concurrency` ms.
 */
export type ErrcodeClass = 'retry' | 'token' | 'code' | 'forbidden' | 'limited' | 'config'

export interface ErrcodeInfo {
  class: ErrcodeClass
  explanation: string
  /** The answer is about this server's own setup, whatever the client sent. */
  server?: true
}

const table: Record<number, ErrcodeInfo> = {
  [-1]: { class: 'retry', explanation: 'WeCom is busy' },
  40001: { class: 'token', explanation: 'invalid secret: check the corp secret, or whether it was reset or the app disabled', server: true },
  40013: { class: 'config', explanation: 'invalid corpid: check the configured corpId', server: true },
  40014: { class: 'token', explanation: 'invalid access_token: expired early, malformed, or a token of the wrong app' },
  42001: { class: 'token', explanation: 'access_token expired' },
  40029: { class: 'code', explanation: 'invalid code: expired, already used, or not from wx.qy.login' },
  41008: { class: 'code', explanation: 'missing code' },
  42013: { class: 'code', explanation: 'mini-program login state expired' },
  45009: { class: 'limited', explanation: 'WeCom frequency limit reached' },
  45033: { class: 'limited', explanation: 'WeCom concurrency limit reached' },
  48002: { class: 'config', explanation: 'no API permission: the mini program of the code is not the one bound to this app' },
  60011: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  60020: { class: 'config', explanation: 'server IP not trusted: add this server\'s egress IP to the app\'s trusted IPs', server: true },
  60021: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  60111: { class: 'forbidden', explanation: 'userid not found: left, deleted, or outside the visible range' },
  90206: { class: 'config', explanation: 'the mini program is not associated with this corp' },
  92000: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  92002: { class: 'config', explanation: 'cross-corp call: a token of one corp was used for another corp\'s member' }
}

const unknown: ErrcodeInfo = { class: 'config', explanation: 'unexpected WeCom errcode' }

export function describeErrcode (errcode: number): ErrcodeInfo {
  return table[errcode] ?? unknown
}
