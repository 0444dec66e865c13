import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import type { AccessClaims, AccessTokens } from './jwt.js'
import type { Revocations } from './sessions/revocations.js'
import { memberKey } from './stores/store.js'

/** The member a verified access token names: what `request.wecomUser` holds. */
export interface WecomUser { userid: string, corpid: string }

/** The session of a verified access token: what `request.wecomSession` holds. `iat`, `exp`: epoch seconds. */
export interface WecomSession { sid: string, iat: number, exp: number }

/** Where `authenticate` leaves the verified claims (the session id with them) for the plugin's own use. */
export const kClaims = Symbol('fastify-wecom-auth.claims')

declare module 'fastify' {
  interface FastifyRequest {
    [kClaims]: AccessClaims | null
  }
}

export type Authenticate = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** `member` is computed once here, so that the per-request not-before check is one map lookup. */
interface Verified { claims: AccessClaims, expiresAt: number, member: string }

const BEARER = /^Bearer +(\S+) *$/i

/**
 * The onRequest hook protecting the host's routes. A token is verified once, then served from a
 * bounded cache until it expires: the signature check is the costly part of a request, and a
 * valid token stays valid for its life unless its session is revoked or its member off-boarded,
 * which is checked every time against the in-process revocations. No network on this path.
 */
export function createGuard (options: {
  tokens: AccessTokens
  revoked: Revocations
  cacheSize?: number
  now?: () => number
}): Authenticate {
  const { tokens, revoked } = options
  const cacheSize = options.cacheSize ?? 10_000
  const now = options.now ?? Date.now
  const verified = new Map<string, Verified>()

  function verify (token: string): Verified | Error {
    const cached = verified.get(token)
    if (cached !== undefined) {
      if (cached.expiresAt > now()) return cached
      verified.delete(token)
      return new TokenExpiredError()
    }
    const outcome = tokens.verify(token)
    if (!outcome.ok) return outcome.reason === 'expired' ? new TokenExpiredError() : new TokenInvalidError()
    const { claims } = outcome
    const entry = { claims, expiresAt: claims.exp * 1000, member: memberKey(claims.corpid, claims.userid) }
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!)
    verified.set(token, entry)
    return entry
  }

  return function authenticate (request, reply, done) {
    const header = request.headers.authorization
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1]
    // Each refusal carries its WWW-Authenticate challenge as `error.headers` (src/errors.ts).
    if (token === undefined) {
      done(new TokenMissingError())
      return
    }
    const result = verify(token)
    const failure = result instanceof Error
      ? result
      : revoked.refuses(result.claims.sid, result.member, result.claims.iat_ms) ? new TokenRevokedError() : undefined
    if (failure !== undefined) {
      done(failure)
      return
    }
    const ok = result as Verified
    // A copy per request: a route that edits its user must not edit the next request's.
    request.wecomUser = { userid: ok.claims.userid, corpid: ok.claims.corpid }
    request.wecomSession = { sid: ok.claims.sid, iat: ok.claims.iat, exp: ok.claims.exp }
    // Frozen when verified: shared by the token's requests without a copy each.
    request.wecomClaims = ok.claims.extra
    request[kClaims] = ok.claims
    done()
  }
}
