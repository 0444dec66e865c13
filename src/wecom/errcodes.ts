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
 */
export type ErrcodeClass = 'retry' | 'token' | 'code' | 'forbidden' | 'limited' | 'config'

interface ErrcodeInfo { class: ErrcodeClass, explanation: string }

const table: Record<number, ErrcodeInfo> = {
  [-1]: { class: 'retry', explanation: 'WeCom is busy' },
  40001: { class: 'token', explanation: 'invalid secret: check the corp secret, or whether it was reset or the app disabled' },
  40013: { class: 'config', explanation: 'invalid corpid: check the configured corpId' },
  40014: { class: 'token', explanation: 'invalid access_token: expired early, malformed, or a token of the wrong app' },
  42001: { class: 'token', explanation: 'access_token expired' },
  40029: { class: 'code', explanation: 'invalid code: expired, already used, or not from wx.qy.login' },
  41008: { class: 'code', explanation: 'missing code' },
  42013: { class: 'code', explanation: 'mini-program login state expired' },
  45009: { class: 'limited', explanation: 'WeCom frequency limit reached' },
  45033: { class: 'limited', explanation: 'WeCom concurrency limit reached' },
  48002: { class: 'config', explanation: 'no API permission: the mini program of the code is not the one bound to this app' },
  60011: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  60020: { class: 'config', explanation: 'server IP not trusted: add this server\'s egress IP to the app\'s trusted IPs' },
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
