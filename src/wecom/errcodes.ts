/**
 * What each WeCom errcode means for this server (global table, doc path/90313). The class drives
 * behaviour (admission.ts remembers, outcome.ts answers); the explanation is what the log line
 * says, so that an operator can act on it.
 *
 * - retry:     the one code WeCom says to retry (-1, system busy): retried within the deadline
 * - token:     the access token is stale or wrong: refreshed once, the call retried once
 * - code:      the login code is bad: the client must call wx.qy.login again
 * - forbidden: the member may not use the app
 * - limited:   WeCom's rate or concurrency limits: the corp's calls to the endpoint pause
 * - config:    this server's setup is wrong; retrying cannot help
 * - unknown:   not in this table: an answer of the API called (api()), or a code WeCom added
 *
 * `window` names the refusal window (api.refusals.*) an answer opens (admission.ts): `config`
 * for the app (corpId + secret), since 40013 and 60020 speak of this server's setup (its corpid,
 * its IP) whatever the client sent, and 40001 names a reset secret once even a token fetched for
 * that very call is refused; `frequency` and `concurrency` for the corp and endpoint. Other token
 * codes on a fresh token (42001, 40014) are a passing state: the token's next fetch backs off. A
 * config code without a window (48002, 90206) is remembered only where the endpoint's answers
 * carry nothing of the client's (gettoken, see endpoints.ts): a client can provoke them with a
 * code of another mini program, and must not lock every member out by doing so. Nor do 40093,
 * 50001 and 80001 open one: they speak of a page's URL or a redirect_uri, which a client chooses.
 */
export type ErrcodeClass = 'retry' | 'token' | 'code' | 'forbidden' | 'limited' | 'config' | 'unknown'

export interface ErrcodeInfo {
  class: ErrcodeClass
  explanation: string
  /** The refusal window (api.refusals.*) this answer opens on any endpoint. */
  window?: 'config' | 'frequency' | 'concurrency'
}

export const errcodes: Readonly<Record<number, ErrcodeInfo>> = {
  [-1]: { class: 'retry', explanation: 'WeCom is busy' },
  40001: { class: 'token', explanation: 'invalid secret: check the corp secret, or whether it was reset or the app disabled', window: 'config' },
  40013: { class: 'config', explanation: 'invalid corpid: check the configured corpId', window: 'config' },
  40014: { class: 'token', explanation: 'invalid access_token: expired early, malformed, or a token of the wrong app' },
  40029: { class: 'code', explanation: 'invalid code: expired, already used, or not from wx.qy.login or WeCom\'s web authorization' },
  40093: { class: 'config', explanation: 'invalid JS-SDK signature: sign the page\'s own URL without its # part, with the ticket of the corp (wx.config) or of the app (agentConfig)' },
  41008: { class: 'code', explanation: 'missing code' },
  42001: { class: 'token', explanation: 'access_token expired' },
  42013: { class: 'code', explanation: 'mini-program login state expired' },
  45009: { class: 'limited', explanation: 'WeCom frequency limit reached', window: 'frequency' },
  45033: { class: 'limited', explanation: 'WeCom concurrency limit reached', window: 'concurrency' },
  48002: { class: 'config', explanation: 'no API permission: the mini program of the code is not the one bound to this app' },
  50001: { class: 'config', explanation: 'redirect_uri not trusted: add its domain (port included) to the app\'s trusted domains' },
  60011: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  60020: { class: 'config', explanation: 'server IP not trusted: add this server\'s egress IP to the app\'s trusted IPs', window: 'config' },
  60021: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  60111: { class: 'forbidden', explanation: 'userid not found: left, deleted, or outside the visible range' },
  80001: { class: 'config', explanation: 'untrusted domain: add the page\'s domain to the app\'s trusted domains' },
  90206: { class: 'config', explanation: 'the mini program is not associated with this corp' },
  92000: { class: 'forbidden', explanation: 'member outside the app\'s visible range' },
  92002: { class: 'config', explanation: 'cross-corp call: a token of one corp was used for another corp\'s member' }
}

const unknown: ErrcodeInfo = { class: 'unknown', explanation: 'an errcode outside this plugin\'s table (see WeCom\'s global errcode list, doc path/90313)' }

export function describeErrcode (errcode: number): ErrcodeInfo {
  return errcodes[errcode] ?? unknown
}
