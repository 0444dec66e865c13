import { createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import { createDecoder, TokenError } from 'fast-jwt'
import { ClaimsInvalidError } from './errors.js'
import { canonicalBytes, withLowS } from './jwt-algorithm.js'
import type { ResolvedConfig } from './options.js'
import type { Surface } from './member.js'

/** The claims of an access JWT this plugin issues. */
export interface AccessClaims {
  userid: string
  corpid: string
  /** The session this token belongs to. */
  sid: string
  /** Where the session was made; a token without the claim (signed before it existed) is the mini program's. */
  surface: Surface
  /** The SuiteId of a session of a corp that installed a suite; absent for a configured corp's. */
  suite?: string
  iat: number
  /**
   * The issue time in epoch ms. `iat` has one-second steps: a member off-boarded and logging in
   * again within one second would otherwise find the new token refused with the old ones. Every
   * token the plugin signs has it; one made elsewhere with the key and without it counts as
   * issued at the start of its `iat` second, the reading that refuses it rather than lets it pass.
   */
  iat_ms: number
  exp: number
  /** The host's own claims (`extendClaims`), frozen: read by every request the token makes. */
  extra: Readonly<Record<string, unknown>>
}

export type VerifyOutcome =
  | { ok: true, claims: AccessClaims }
  | { ok: false, reason: 'expired' | 'invalid' }

export interface AccessTokens {
  /** `extra`: the host's claims; a name of RESERVED_CLAIMS, or a non-object, throws WECOM_CLAIMS_INVALID. */
  /** `claims.surface`: `miniprogram` when absent. */
  sign (claims: Pick<AccessClaims, 'userid' | 'corpid' | 'sid'> & { surface?: Surface, suite?: string }, extra?: Record<string, unknown>): string
  verify (token: string): VerifyOutcome
}

/** What the plugin signs itself, and JWT's registered names (RFC 7519): never the host's to set. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set(['userid', 'corpid', 'sid', 'surface', 'suite', 'iat', 'iat_ms', 'exp', 'aud', 'iss', 'jti', 'nbf', 'sub'])

const SURFACES: ReadonlySet<Surface> = new Set(['miniprogram', 'h5', 'web'])

/** RFC 9068's type of a JWT access token: what tells ours from any other JWT signed with the key. */
const ACCESS_TOKEN_TYPE = 'at+jwt'

/** What the plugin uses of @fastify/jwt's `JWT` decorator (its own type would bring @fastify/jwt's augmentations to the host). */
export interface JwtEngine {
  sign (payload: Record<string, unknown>): string
  verify (token: string, options?: { key: string | Buffer, algorithms: string[] }): Record<string, unknown>
}

/** Under this namespace in @fastify/jwt: the one name the plugin may add beside a host's own. */
const NAMESPACE = 'wecom'

/**
 * Registers @fastify/jwt, signing with the first key, in an encapsulated child of the plugin, and
 * returns its decorator. With a namespace and decorator names of its own, it claims nothing of the
 * host's: no `app.jwt` (beside a host's own @fastify/jwt, a `wecom` entry in it), no `request.user`,
 * whichever of the two is registered first. The algorithm is pinned, so `alg: none` or a switch
 * to HS256 with a public key fails.
 */
export async function registerJwtEngine (fastify: FastifyInstance, config: ResolvedConfig['jwt']): Promise<JwtEngine> {
  const [signing] = config.keys
  let engine: JwtEngine | undefined
  await fastify.register(async (child) => {
    await child.register(fastifyJwt, {
      namespace: NAMESPACE,
      decoratorName: 'wecomJwtPayload',
      jwtDecode: 'wecomJwtDecode',
      jwtVerify: 'wecomJwtVerify',
      jwtSign: 'wecomJwtSign',
      secret: signing.algorithm === 'HS256' ? signing.signKey : { private: signing.signKey, public: signing.verifyKey },
      sign: {
        algorithm: signing.algorithm,
        // The types want alg in a header: the same pinned algorithm.
        header: { alg: signing.algorithm, typ: ACCESS_TOKEN_TYPE },
        ...(signing.kid === undefined ? {} : { kid: signing.kid }),
        expiresIn: config.expiresIn,
        ...(config.issuer === undefined ? {} : { iss: config.issuer }),
        aud: config.audience
      },
      verify: {
        algorithms: [signing.algorithm],
        checkTyp: ACCESS_TOKEN_TYPE,
        ...(config.issuer === undefined ? {} : { allowedIss: config.issuer }),
        allowedAud: config.audience,
        requiredClaims: ['userid', 'corpid', 'sid', 'iat', 'exp', 'aud', ...(config.issuer === undefined ? [] : ['iss'])]
      }
    } as FastifyJWTOptions)
    engine = (child.jwt as unknown as Record<string, JwtEngine>)[NAMESPACE]
  })
  return engine!
}

/**
 * Signs and verifies the access JWT with @fastify/jwt (`registerJwtEngine`).
 *
 * A host may sign its own JWTs with the same key: only a token shaped as this plugin issues them
 * passes (typed `at+jwt`, our audience, a configured corp or one of a configured suite's, a
 * non-empty member and session, a life no longer than `expiresIn`). These checks run once per
 * token: the guard caches the outcome. A suite's corps come and go: an uninstalled corp's tokens
 * are refused by the revocations (Revocations), its refresh by the sessions.
 */
export function createAccessTokens (config: ResolvedConfig['jwt'], accepted: { corpIds: ReadonlySet<string>, suiteIds: ReadonlySet<string> }, engine: JwtEngine): AccessTokens {
  const { corpIds, suiteIds } = accepted
  const [signing, ...older] = config.keys
  // The first key is @fastify/jwt's own; an older key's tokens (a rotation) are verified with that
  // key and its own pinned algorithm, the other checks alike: rare, and once per token.
  const byKid = new Map(older.map((key) => [key.kid, { key: key.verifyKey, algorithms: [key.algorithm] }]))
  const decodeHeader = createDecoder({ complete: true })
  const lowSigned = signing.algorithm === 'ES256'
  const verifyToken = (token: string): Record<string, unknown> => {
    if (byKid.size === 0) return engine.verify(token)
    const kid = kidOf(decodeHeader, token)
    if (kid === signing.kid) return engine.verify(token)
    const options = byKid.get(kid)
    if (options === undefined) throw new TokenError(TokenError.codes.invalidKey, 'no key of that kid')
    return engine.verify(token, options)
  }

  return {
    sign (claims, extra) {
      const now = Date.now()
      // jti makes every token distinct, even two of one session signed within the same second.
      // randomUUID draws from a buffered pool: cheaper than a randomBytes call per token.
      const own: Record<string, unknown> = { userid: claims.userid, corpid: claims.corpid, sid: claims.sid, surface: claims.surface ?? 'miniprogram', iat: Math.floor(now / 1000), iat_ms: now, jti: randomUUID() }
      if (claims.suite !== undefined) own.suite = claims.suite
      // Object.assign, not two spreads: `{ ...a, ...b }` took 7–10 µs a token on Node 20 (CONTRIBUTING.md, House rules).
      const token = engine.sign(extra === undefined ? own : Object.assign({}, checkedExtra(extra), own))
      // Low-s, of ES256's two valid forms: the one the guard's cache finds without decoding it.
      return lowSigned ? withLowS(token) : token
    },
    verify (token) {
      if (!canonicalSignature(token)) return { ok: false, reason: 'invalid' }
      let payload: Record<string, unknown>
      try {
        payload = withoutStacks(() => verifyToken(token))
      } catch (error) {
        const expired = error instanceof TokenError && error.code === TokenError.codes.expired
        return { ok: false, reason: expired ? 'expired' : 'invalid' }
      }
      const { userid, corpid, sid, iat, exp, suite } = payload
      const iatMs = payload.iat_ms ?? (typeof iat === 'number' ? iat * 1000 : undefined)
      if (typeof userid !== 'string' || userid === '' || typeof sid !== 'string' || sid === '' ||
          typeof corpid !== 'string' || corpid === '' || !(suite === undefined ? corpIds.has(corpid) : typeof suite === 'string' && suiteIds.has(suite)) ||
          typeof iat !== 'number' || typeof iatMs !== 'number' || Math.floor(iatMs / 1000) !== iat ||
          typeof exp !== 'number' || exp - iat > config.expiresIn) {
        return { ok: false, reason: 'invalid' }
      }
      const surface = payload.surface ?? 'miniprogram'
      if (!SURFACES.has(surface as Surface)) return { ok: false, reason: 'invalid' }
      const claims: AccessClaims = { userid, corpid, sid, surface: surface as Surface, iat, iat_ms: iatMs, exp, extra: extraOf(payload) }
      if (suite !== undefined) claims.suite = suite as string
      return { ok: true, claims }
    }
  }
}

/**
 * `work` with errors taking no stack, the limit restored at once. fast-jwt refuses by throwing,
 * and only the refusal's code is read: without the stack, a forged or expired token costs about
 * 40% less (22.7 against 35–41 µs measured for HS256), which is what a flood of them costs the
 * server. Where `Error.stackTraceLimit` cannot be written (frozen intrinsics), stacks it is.
 */
function withoutStacks<T> (work: () => T): T {
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = 0
  } catch {
    return work()
  }
  try {
    return work()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * Whether the token's signature segment is base64url as an encoder writes it (RFC 4648 §3.5, §5).
 * fast-jwt decodes leniently: the last character's unused low bits (2 of them for HS256, 4 for
 * ES256 and RS256) may be anything, so one signature has 4 or 16 spellings that all verify. A token
 * this plugin signed never has another; refusing the others keeps every spelling of a token from
 * taking a cache entry of its own.
 */
function canonicalSignature (token: string): boolean {
  return canonicalBytes(token.slice(token.lastIndexOf('.') + 1)) !== undefined
}

/**
 * The JWKS (RFC 7517) of the asymmetric keys that have a kid: what another service verifies the
 * access tokens with, without any secret. undefined when there is none to publish.
 */
export function jwksOf (keys: ResolvedConfig['jwt']['keys']): { keys: JsonWebKey[] } | undefined {
  const published = keys.flatMap(({ kid, algorithm, verifyKey }) => kid === undefined || algorithm === 'HS256'
    ? []
    : [{ ...createPublicKey(verifyKey).export({ format: 'jwk' }), kid, alg: algorithm, use: 'sig' }])
  return published.length === 0 ? undefined : { keys: published }
}

/** The kid in a token's header; undefined when it has none. Throws on a token that does not decode. */
function kidOf (decode: (token: string) => { header: { kid?: unknown } }, token: string): string | undefined {
  const { kid } = decode(token).header
  return typeof kid === 'string' ? kid : undefined
}

function checkedExtra (extra: unknown): Record<string, unknown> {
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) throw new ClaimsInvalidError('something other than an object')
  for (const name of Object.keys(extra)) {
    if (RESERVED_CLAIMS.has(name)) throw new ClaimsInvalidError(`the reserved claim ${name}`)
    // An own `__proto__` (JSON.parse makes one) would set the prototype of the object it is copied into.
    if (name === '__proto__') throw new ClaimsInvalidError('the claim __proto__')
  }
  return extra as Record<string, unknown>
}

const NO_EXTRA: Readonly<Record<string, unknown>> = Object.freeze({})

function extraOf (payload: Record<string, unknown>): Readonly<Record<string, unknown>> {
  let extra: Record<string, unknown> | undefined
  for (const [name, value] of Object.entries(payload)) {
    if (RESERVED_CLAIMS.has(name) || name === '__proto__') continue
    extra ??= {}
    extra[name] = deepFreeze(value)
  }
  return extra === undefined ? NO_EXTRA : Object.freeze(extra)
}

/** JSON from a verified token: frozen once, so that no request can change what the next one reads. */
function deepFreeze (value: unknown): unknown {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
