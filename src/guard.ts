import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { cookieValue } from './web/cookies.js'
import { checkOrigin } from './web/csrf.js'
import { TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import type { AccessClaims, AccessTokens } from './jwt.js'
import type { Revocations } from './sessions/revocations.js'
import { VerificationCache } from './verification-cache.js'

/** The member a verified access token names: what `request.wecomUser` holds. */
export interface WecomUser {
  userid: string
  corpid: string
  /** The SuiteId, for a member of a corp that installed one of `suites`; absent otherwise. */
  suiteId?: string
}

/** The session of a verified access token: what `request.wecomSession` holds. `iat`, `exp`: epoch seconds. */
export interface WecomSession { sid: string, iat: number, exp: number }

/** Where `authenticate` leaves the verified claims (the session id with them) for the plugin's own use. */
export const kClaims = Symbol('fastify-wecom-auth.claims')
/** True when `authenticate` took the token from the access cookie: a request the CSRF checks apply to. */
export const kByCookie = Symbol('fastify-wecom-auth.by-cookie')

declare module 'fastify' {
  interface FastifyRequest {
    [kClaims]: AccessClaims | null
    [kByCookie]: boolean
  }
}

export type Authenticate = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

const BEARER = /^Bearer +(\S+) *$/i
/** RFC 9110 §9.2.1: the methods that change nothing, which a cross-site page may trigger harmlessly. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The onRequest hook protecting the host's routes. A token is verified once, then served from the
 * bounded cache until it expires: the signature check is the costly part of a request, and a
 * valid token stays valid for its life unless its session is revoked or its member off-boarded,
 * which is checked every time against the in-process revocations. No network on this path.
 */
export function createGuard (options: {
  tokens: AccessTokens
  revoked: Revocations
  cache: VerificationCache
  /**
   * The access cookie's name and `web.origins`, when browser sessions are on (`web`): the cookie is
   * read only without an Authorization header, and a request by cookie that may change something
   * (any method but GET, HEAD and OPTIONS) must come from one of the origins (web/csrf.ts).
   */
  cookie?: { name: string, origins: ReadonlySet<string> }
}): Authenticate {
  const { tokens, revoked, cache, cookie } = options

  /** The claims of a token that passes, cached or verified now; the refusal otherwise. */
  function verify (token: string): AccessClaims | Error {
    // Hashed once: the lookup's key is the key a verified token is kept under (but an ES256 twin's).
    const key = VerificationCache.keyOf(token)
    const cached = cache.find(token, key)
    if (cached === 'expired') return new TokenExpiredError()
    if (cached !== undefined) return revoked.refuses(cached) ? new TokenRevokedError() : cached
    const outcome = tokens.verify(token)
    if (!outcome.ok) return outcome.reason === 'expired' ? new TokenExpiredError() : new TokenInvalidError()
    // A revoked token is not kept: an ended session's tokens cannot take the cache's room.
    if (revoked.refuses(outcome.claims)) return new TokenRevokedError()
    cache.keep(token, key, outcome.claims)
    return outcome.claims
  }

  return function authenticate (request, reply, done) {
    const header = request.headers.authorization
    let token = header === undefined ? undefined : BEARER.exec(header)?.[1]
    if (header === undefined && cookie !== undefined) {
      token = cookieValue(request, cookie.name)
      request[kByCookie] = token !== undefined
      if (token !== undefined && !SAFE_METHODS.has(request.method)) {
        try {
          checkOrigin(request, cookie.origins)
        } catch (error) {
          done(error as Error)
          return
        }
      }
    }
    // Each refusal carries its WWW-Authenticate challenge as `error.headers` (src/errors.ts).
    if (token === undefined) {
      done(new TokenMissingError())
      return
    }
    const claims = verify(token)
    if (claims instanceof Error) {
      done(claims)
      return
    }
    // A copy per request: a route that edits its user must not edit the next request's.
    request.wecomUser = claims.suite === undefined ? { userid: claims.userid, corpid: claims.corpid } : { userid: claims.userid, corpid: claims.corpid, suiteId: claims.suite }
    request.wecomSession = { sid: claims.sid, iat: claims.iat, exp: claims.exp }
    // Frozen when verified: shared by the token's requests without a copy each.
    request.wecomClaims = claims.extra
    request[kClaims] = claims
    done()
  }
}
