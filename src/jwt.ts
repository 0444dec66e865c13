import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import type { ResolvedConfig } from './options.js'

/** The claims of an access JWT this plugin issues. */
export interface AccessClaims {
  userid: string
  corpid: string
  /** The session this token belongs to. */
  sid: string
  iat: number
  /**
   * The issue time in epoch ms. `iat` has one-second steps: a member off-boarded and logging in
   * again within one second would otherwise find the new token refused with the old ones. Every
   * token the plugin signs has it; one made elsewhere with the key and without it counts as
   * issued at the start of its `iat` second, the reading that refuses it rather than lets it pass.
   */
  iat_ms: number
  exp: number
}

export type VerifyOutcome =
  | { ok: true, claims: AccessClaims }
  | { ok: false, reason: 'expired' | 'invalid' }

export interface AccessTokens {
  sign (claims: Pick<AccessClaims, 'userid' | 'corpid' | 'sid'>): string
  verify (token: string): VerifyOutcome
}

/** RFC 9068's type of a JWT access token: what tells ours from any other JWT signed with the key. */
const ACCESS_TOKEN_TYPE = 'at+jwt'

/**
 * Signs and verifies the access JWT with fast-jwt, the engine of @fastify/jwt. @fastify/jwt itself
 * is not registered: its `jwt` decorator and `request.user` can exist once per app, and belong to
 * the host. The algorithm is pinned, so `alg: none` or a switch to HS256 with a public key fails.
 *
 * A host may sign its own JWTs with the same key: only a token shaped as this plugin issues them
 * passes (typed `at+jwt`, our audience, a configured corp, a non-empty member and session, a life
 * no longer than `expiresIn`). These checks run once per token: the guard caches the outcome.
 */
export function createAccessTokens (config: ResolvedConfig['jwt'], corpIds: ReadonlySet<string>): AccessTokens {
  const signer = createSigner({
    key: config.signKey,
    algorithm: config.algorithm,
    // The types want alg in a header: the same pinned algorithm.
    header: { alg: config.algorithm, typ: ACCESS_TOKEN_TYPE },
    expiresIn: config.expiresIn * 1000,
    iss: config.issuer,
    aud: config.audience
  })
  const verifier = createVerifier({
    key: config.verifyKey,
    algorithms: [config.algorithm],
    checkTyp: ACCESS_TOKEN_TYPE,
    allowedIss: config.issuer,
    allowedAud: config.audience,
    requiredClaims: ['userid', 'corpid', 'sid', 'iat', 'exp', 'aud', ...(config.issuer === undefined ? [] : ['iss'])]
  })

  return {
    sign (claims) {
      const now = Date.now()
      // jti makes every token distinct, even two of one session signed within the same second.
      // randomUUID draws from a buffered pool: cheaper than a randomBytes call per token.
      return signer({
        userid: claims.userid, corpid: claims.corpid, sid: claims.sid, iat: Math.floor(now / 1000), iat_ms: now, jti: randomUUID()
      })
    },
    verify (token) {
      let payload: Record<string, unknown>
      try {
        payload = verifier(token)
      } catch (error) {
        const expired = error instanceof TokenError && error.code === TokenError.codes.expired
        return { ok: false, reason: expired ? 'expired' : 'invalid' }
      }
      const { userid, corpid, sid, iat, exp } = payload
      const iatMs = payload.iat_ms ?? (typeof iat === 'number' ? iat * 1000 : undefined)
      if (typeof userid !== 'string' || userid === '' || typeof sid !== 'string' || sid === '' ||
          typeof corpid !== 'string' || !corpIds.has(corpid) ||
          typeof iat !== 'number' || typeof iatMs !== 'number' || Math.floor(iatMs / 1000) !== iat ||
          typeof exp !== 'number' || exp - iat > config.expiresIn) {
        return { ok: false, reason: 'invalid' }
      }
      return { ok: true, claims: { userid, corpid, sid, iat, iat_ms: iatMs, exp } }
    }
  }
}
