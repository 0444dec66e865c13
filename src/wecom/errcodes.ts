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

const OUT_OF_RANGE = 'member outside the app\'s visible range'

/** The table by class: errcode → its explanation, or [explanation, window]. */
const byClass: Record<Exclude<ErrcodeClass, 'unknown'>, Record<number, string | [string, NonNullable<ErrcodeInfo['window']>]>> = {
  retry: { [-1]: 'WeCom is busy' },
  token: {
    40001: ['invalid secret: check the app\'s secret (corps[].secret for the mini program, corps[].web.secret for the web app, a suite\'s secret), or whether it was reset or the app disabled', 'config'],
    40014: 'invalid access_token: expired early, malformed, or a token of the wrong app',
    42001: 'access_token expired',
    // A suite's own token (doc path/90600): refreshed once as an app's is.
    40082: 'invalid suite_access_token',
    42009: 'suite_access_token expired'
  },
  code: {
    40029: 'invalid code: expired, already used, or not from wx.qy.login or WeCom\'s web authorization',
    41008: 'missing code',
    42013: 'mini-program login state expired'
  },
  forbidden: { 60011: OUT_OF_RANGE, 60021: OUT_OF_RANGE, 92000: OUT_OF_RANGE, 60111: 'userid not found: left, deleted, or outside the visible range' },
  limited: { 45009: ['WeCom frequency limit reached', 'frequency'], 45033: ['WeCom concurrency limit reached', 'concurrency'] },
  config: {
    40013: ['invalid corpid: check the configured corpId', 'config'],
    60020: ['server IP not trusted: add this server\'s egress IP to the app\'s trusted IPs', 'config'],
    40093: 'invalid JS-SDK signature: sign the page\'s own URL without its # part, with the ticket of the corp (wx.config) or of the app (agentConfig)',
    48002: 'no API permission: the app may not call this endpoint (on jscode2session: the code\'s mini program is not the one bound to this app)',
    50001: 'redirect_uri not trusted: add its domain (port included) to the app\'s trusted domains',
    80001: 'untrusted domain: add the page\'s domain to the app\'s trusted domains',
    90206: 'the mini program is not associated with this corp',
    92002: 'cross-corp call: a token of one corp was used for another corp\'s member'
  }
}

/** Every errcode the plugin acts on (README, "WeCom errcodes", is checked against it). */
export const errcodes: Readonly<Record<number, ErrcodeInfo>> = Object.fromEntries(
  Object.entries(byClass).flatMap(([kind, rows]) => Object.entries(rows).map(([errcode, row]) => [Number(errcode),
    typeof row === 'string'
      ? { class: kind as ErrcodeClass, explanation: row }
      : { class: kind as ErrcodeClass, explanation: row[0], window: row[1] }]))
)

const unknown: ErrcodeInfo = { class: 'unknown', explanation: 'an errcode outside this plugin\'s table (see WeCom\'s global errcode list, doc path/90313)' }

export function describeErrcode (errcode: number): ErrcodeInfo {
  return errcodes[errcode] ?? unknown
}
