import createError, { type FastifyErrorConstructor } from '@fastify/error'

// Every error the plugin answers with, in one table so that the README table and the codes
// clients switch on cannot drift apart. Messages never interpolate a secret, a token or a code.

/** Seconds a client should wait before retrying a 503 when nothing more precise is known. */
const RETRY_AFTER_SECONDS = 5

/** RFC 6750's challenges: a request without a token, and one whose token was refused. */
const CHALLENGE = 'Bearer realm="wecom"'
const INVALID_TOKEN = 'Bearer realm="wecom", error="invalid_token"'

/**
 * Whether an error is one of the plugin's, by its code: one the host's code or an outer handler
 * should see as the plugin answered it. By code, not `instanceof`, so that it holds across the
 * ES module and CommonJS builds loaded side by side.
 */
export function isWecomError (error: unknown): error is Error & { code: string, statusCode?: number } {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('WECOM_')
}

/**
 * The base of every error here. Its answer's headers travel on the error itself (`error.headers`,
 * which Fastify's default handler sets), so that an error reaches the host's own error handler
 * with everything its answer needs, wherever it was thrown: a route of the plugin, `authenticate`
 * on a host's route, or a decorator the host called.
 */
class WecomError extends Error {
  declare code: string
  declare statusCode: number
  declare retryAfter?: number

  get headers (): Record<string, string> | undefined {
    if (this.code === 'WECOM_TOKEN_MISSING') return { 'www-authenticate': CHALLENGE }
    if (this.code === 'WECOM_TOKEN_INVALID' || this.code === 'WECOM_TOKEN_EXPIRED' || this.code === 'WECOM_TOKEN_REVOKED') {
      return { 'www-authenticate': INVALID_TOKEN }
    }
    if (this.statusCode === 503) return { 'retry-after': String(this.retryAfter ?? RETRY_AFTER_SECONDS) }
    if (this.statusCode === 429 && this.retryAfter !== undefined) return { 'retry-after': String(this.retryAfter) }
    return undefined
  }
}
// @fastify/error's types want an ErrorConstructor; its errors only take the prototype.
const Base = WecomError as unknown as ErrorConstructor

/**
 * One error of the table, on Base. Its type keeps the literal code and status (what a host's
 * `switch` narrows on), or, given the message's arguments (`wecomError<[string]>`), the code alone,
 * as @fastify/error's own overloads do.
 */
function wecomError<C extends string, SC extends number> (code: C, message: string, statusCode: SC, stack?: false): FastifyErrorConstructor<{ code: C, statusCode: SC }>
function wecomError<Arg extends unknown[]> (code: string, message: string, statusCode: number): FastifyErrorConstructor<{ code: string }, Arg>
function wecomError (code: string, message: string, statusCode: number, stack = true): FastifyErrorConstructor {
  return createError(code, message, statusCode, Base, stack)
}

export const CorpUnknownError = wecomError<[string]>('WECOM_CORP_UNKNOWN', 'corpId %s is not configured on this server', 400)
export const SuiteUnknownError = wecomError<[string]>('WECOM_SUITE_UNKNOWN', 'suiteId %s is not configured on this server', 400)
export const InvalidCodeError = wecomError('WECOM_INVALID_CODE', 'The login code is invalid, expired or already used: call wx.qy.login again', 401)
export const CorpNotAllowedError = wecomError('WECOM_CORP_NOT_ALLOWED', 'This corp is not served by this app', 403)
export const UserForbiddenError = wecomError('WECOM_USER_FORBIDDEN', 'This member may not use this app', 403)
export const CorpMismatchError = wecomError<[string]>('WECOM_CORP_MISMATCH', 'The code belongs to corp %s: call wx.qy.login again and retry with that corpId', 409)
export const UpstreamError = wecomError('WECOM_UPSTREAM_ERROR', 'WeCom refused the request: the server is misconfigured (see the server log)', 502)
export const UnavailableError = wecomError('WECOM_UNAVAILABLE', 'WeCom is unavailable or rate-limited, retry later', 503)
// The guard's refusals carry no stack: they are the client's, always thrown from the same place, and
// a flood of forged tokens pays for each one (bench scenario 9's profile had stack capture on top).
export const TokenMissingError = wecomError('WECOM_TOKEN_MISSING', 'Authorization: Bearer <token> is required', 401, false)
export const TokenInvalidError = wecomError('WECOM_TOKEN_INVALID', 'The access token is invalid', 401, false)
export const TokenExpiredError = wecomError('WECOM_TOKEN_EXPIRED', 'The access token has expired', 401, false)
export const TokenRevokedError = wecomError('WECOM_TOKEN_REVOKED', 'The session of this access token has ended', 401, false)
export const RefreshInvalidError = wecomError('WECOM_REFRESH_INVALID', 'The refresh token is invalid, expired or already used', 401)
export const StoreUnavailableError = wecomError('WECOM_STORE_UNAVAILABLE', 'The session store is unavailable, retry later', 503)
export const DecryptError = wecomError('WECOM_DECRYPT_FAILED', 'The encrypted data could not be decrypted with this session', 400)
export const RateLimitedError = wecomError('WECOM_RATE_LIMITED', 'Too many login or refresh requests from this client, retry later', 429)

/** 503 WECOM_UNAVAILABLE, telling the client to come back after `ms` (or the default). */
export function unavailable (ms?: number): Error {
  return retryAfter(new UnavailableError(), ms)
}

/**
 * 429 WECOM_RATE_LIMITED, telling the client to come back after `ms`, as @fastify/rate-limit
 * counted; without `ms`, no Retry-After (the host turned the library's off).
 */
export function rateLimited (ms?: number): Error {
  return retryAfter(new RateLimitedError(), ms)
}

/** Seconds to wait before retrying (a breaker's cool-down, a remembered limit), read by `headers`. */
function retryAfter (error: Error, ms: number | undefined): Error {
  return ms === undefined ? error : Object.assign(error, { retryAfter: Math.max(1, Math.ceil(ms / 1000)) })
}

/** Extra body fields an error carries beside Fastify's `{ statusCode, code, error, message }`. */
export function errorExtras (error: Error): Record<string, string> | undefined {
  const corpId = (error as { corpId?: unknown }).corpId
  return typeof corpId === 'string' ? { corpId } : undefined
}

export function corpMismatch (corpId: string): Error {
  return Object.assign(new CorpMismatchError(corpId), { corpId })
}

// Appended: a host that passes a decorator a value that cannot name what it asks for (e.g. a
// number as a userid) hears so at once, rather than a TypeError from deep inside or, worse, an
// off-boarding that silently did nothing. The message names the argument, never its value.
export const InvalidArgumentError = wecomError<[string, string]>('WECOM_INVALID_ARGUMENT', '%s must be %s', 400)

// WeCom's callback (issue 10). A refusal says which rule failed, never what was sent: the
// signature, the body and the keys stay out of the answer and the log.
export const CallbackForbiddenError = wecomError<[string]>('WECOM_CALLBACK_FORBIDDEN', 'WeCom callback refused: %s', 403)

export const CallbackInvalidError = wecomError<[string]>('WECOM_CALLBACK_INVALID', 'WeCom callback refused: %s', 400)

/**
 * A verified delivery not acknowledged now, so that WeCom resends it (503, Retry-After 5 s): another
 * delivery of the event is being handled, or the host's onEvent failed.
 */
export const CallbackRetryError = wecomError<[string]>('WECOM_CALLBACK_RETRY', 'WeCom callback not acknowledged: %s; WeCom resends it', 503)

/**
 * `app.wecom.api()`: WeCom answered a non-zero errcode. The error carries `errcode`, `endpoint`
 * (the path under /cgi-bin/) and `hint` (WeCom's request id), never the URL or the token.
 */
export const ApiCallError = wecomError<[string, number]>('WECOM_API_ERROR', 'WeCom %s answered errcode %s', 502)

/**
 * A host's `extendClaims` returned something other than an object, or a claim the plugin itself
 * sets: a bug of the host's, so 500. The message names the claim, never its value.
 */
export const ClaimsInvalidError = wecomError<[string]>('WECOM_CLAIMS_INVALID', 'extendClaims returned %s', 500)

// The browser surfaces (issue 18). Each refusal says which rule failed, never the state, code or
// cookie it was about.

/** A web login's `state` is missing, forged, expired, used already or from another browser (login CSRF). */
export const StateInvalidError = wecomError('WECOM_STATE_INVALID', 'The login state is invalid, expired, already used or from another browser: start the login again', 403)

/** A web login's `redirect` is neither a path of this site nor a URL listed in `web.redirects`. */
export const RedirectInvalidError = wecomError('WECOM_REDIRECT_INVALID', 'redirect must be a path of this site or a URL listed in web.redirects', 400)

/**
 * A request authenticated by cookie that would change something came from a page not on
 * `web.origins` (OWASP's Origin and Fetch Metadata checks): nothing was changed.
 */
export const CsrfError = wecomError('WECOM_CSRF', 'Cross-site request refused: Origin is not one of web.origins', 403)

/** A web login for a corp that has no `web` app on this server. */
export const WebNotConfiguredError = wecomError<[string]>('WECOM_WEB_NOT_CONFIGURED', '%s has no web app on this server', 400)

/** A JS-SDK signature asked for a URL whose origin is not one of `web.origins`. */
export const UrlNotAllowedError = wecomError('WECOM_URL_NOT_ALLOWED', 'url must be a page on one of web.origins', 400)
