import createError from '@fastify/error'

// Every error the plugin answers with, in one table so that the README table and the codes
// clients switch on cannot drift apart. Messages never interpolate a secret, a token or a code.

export const CorpUnknownError = createError<[string]>(
  'WECOM_CORP_UNKNOWN', 'corpId %s is not configured on this server', 400)

export const InvalidCodeError = createError(
  'WECOM_INVALID_CODE',
  'The login code is invalid, expired or already used: call wx.qy.login again', 401)

export const CorpNotAllowedError = createError(
  'WECOM_CORP_NOT_ALLOWED', 'This corp is not served by this app', 403)

export const UserForbiddenError = createError(
  'WECOM_USER_FORBIDDEN', 'This member may not use this app', 403)

export const CorpMismatchError = createError<[string]>(
  'WECOM_CORP_MISMATCH',
  'The code belongs to corp %s: call wx.qy.login again and retry with that corpId', 409)

export const UpstreamError = createError(
  'WECOM_UPSTREAM_ERROR', 'WeCom refused the request: the server is misconfigured (see the server log)', 502)

export const UnavailableError = createError(
  'WECOM_UNAVAILABLE', 'WeCom is unavailable or rate-limited, retry later', 503)

export const TokenMissingError = createError(
  'WECOM_TOKEN_MISSING', 'Authorization: Bearer <token> is required', 401)

export const TokenInvalidError = createError(
  'WECOM_TOKEN_INVALID', 'The access token is invalid', 401)

export const TokenExpiredError = createError(
  'WECOM_TOKEN_EXPIRED', 'The access token has expired', 401)

export const TokenRevokedError = createError(
  'WECOM_TOKEN_REVOKED', 'The session of this access token has ended', 401)

export const RefreshInvalidError = createError(
  'WECOM_REFRESH_INVALID', 'The refresh token is invalid, expired or already used', 401)

export const StoreUnavailableError = createError(
  'WECOM_STORE_UNAVAILABLE', 'The session store is unavailable, retry later', 503)

export const DecryptError = createError(
  'WECOM_DECRYPT_FAILED', 'The encrypted data could not be decrypted with this session', 400)

export const RateLimitedError = createError(
  'WECOM_RATE_LIMITED', 'Too many login or refresh requests from this client, retry later', 429)

/** Seconds a client should wait before retrying a 503 when nothing more precise is known. */
export const RETRY_AFTER_SECONDS = 5

/** Seconds to wait before retrying, when the error knows (a breaker's cool-down, a remembered limit). */
export function retryAfterOf (error: Error): number | undefined {
  const retryAfter = (error as { retryAfter?: unknown }).retryAfter
  return typeof retryAfter === 'number' ? retryAfter : undefined
}

/** 503 WECOM_UNAVAILABLE, telling the client to come back after `ms` (or the default). */
export function unavailable (ms?: number): Error {
  const error = new UnavailableError()
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
export const InvalidArgumentError = createError<[string, string]>(
  'WECOM_INVALID_ARGUMENT', '%s must be %s', 400)

// WeCom's callback (issue 10). A refusal says which rule failed, never what was sent: the
// signature, the body and the keys stay out of the answer and the log.
export const CallbackForbiddenError = createError<[string]>(
  'WECOM_CALLBACK_FORBIDDEN', 'WeCom callback refused: %s', 403)

export const CallbackInvalidError = createError<[string]>(
  'WECOM_CALLBACK_INVALID', 'WeCom callback refused: %s', 400)

/**
 * `app.wecom.api()`: WeCom answered a non-zero errcode. The error carries `errcode`, `endpoint`
 * (the path under /cgi-bin/) and `hint` (WeCom's request id), never the URL or the token.
 */
export const ApiCallError = createError<[string, number]>(
  'WECOM_API_ERROR', 'WeCom %s answered errcode %s', 502)

/**
 * A host's `extendClaims` returned something other than an object, or a claim the plugin itself
 * sets: a bug of the host's, so 500. The message names the claim, never its value.
 */
export const ClaimsInvalidError = createError<[string]>(
  'WECOM_CLAIMS_INVALID', 'extendClaims returned %s', 500)
