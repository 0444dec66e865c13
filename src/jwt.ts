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
  exp: number
}

export type VerifyOutcome =
  | { ok: true, claims: AccessClaims }
  | { ok: false, reason: 'expired' | 'invalid' }

export interface AccessTokens {
  sign (claims: Pick<AccessClaims, 'userid' | 'corpid' | 'sid'>): string
  verify (token: string): VerifyOutcome
}

/**
 * Signs and verifies the access JWT with fast-jwt, the engine of @fastify/jwt. @fastify/jwt itself
 * is not registered: its `jwt` decorator and `request.user` can exist once per app, and belong to
 * the host. The algorithm is pinned, so `alg: none` or a switch to HS256 with a public key fails.
 */
export function createAccessTokens (config: ResolvedConfig['jwt']): AccessTokens {
  const signer = createSigner({
    key: config.signKey,
    algorithm: config.algorithm,
    expiresIn: config.expiresIn * 1000,
    iss: config.issuer,
    aud: config.audience
  })
  const verifier = createVerifier({
    key: config.verifyKey,
    algorithms: [config.algorithm],
    allowedIss: config.issuer,
    allowedAud: config.audience,
    requiredClaims: ['userid', 'corpid', 'sid', 'iat', 'exp', ...(config.issuer === undefined ? [] : ['iss']), ...(config.audience === undefined ? [] : ['aud'])]
  })

  return {
    // jti makes every token distinct, even two of one session signed within the same second.
    // randomUUID draws from a buffered pool: cheaper than a randomBytes call per token.
    sign: (claims) => signer({ userid: claims.userid, corpid: claims.corpid, sid: claims.sid, jti: randomUUID() }),
    verify (token) {
      let payload: Record<string, unknown>
      try {
        payload = verifier(token)
      } catch (error) {
        const expired = error instanceof TokenError && error.code === TokenError.codes.expired
        return { ok: false, reason: expired ? 'expired' : 'invalid' }
      }
      const { userid, corpid, sid, iat, exp } = payload
      if (typeof userid !== 'string' || typeof corpid !== 'string' || typeof sid !== 'string' ||
          typeof iat !== 'number' || typeof exp !== 'number') {
        return { ok: false, reason: 'invalid' }
      }
      return { ok: true, claims: { userid, corpid, sid, iat, exp } }
    }
  }
}
