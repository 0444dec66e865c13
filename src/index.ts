import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { InvalidArgumentError, InvalidCodeError, TokenMissingError, UserForbiddenError } from './errors.js'
import { createOffboarding, deliveryLease } from './events/offboarding.js'
import { createGuard, kClaims, type Authenticate, type WecomSession, type WecomUser } from './guard.js'
import { createAccessTokens, jwksOf, registerJwtEngine } from './jwt.js'
import { resolveOptions, type WecomAuthOptions } from './options.js'
import { rateLimitOptions } from './rate-limit.js'
import { createTelemetry } from './telemetry.js'
import { wecomRoutes } from './routes.js'
import { createMemberCheck } from './surfaces/member-check.js'
import { createMiniprogramLogin } from './surfaces/miniprogram.js'
import type { LoginContext } from './surfaces/surface.js'
import { isPrintableAscii, MAX_CODE, MAX_CORP_ID } from './schemas.js'
import { createRefreshTokens } from './sessions/refresh-tokens.js'
import { Revocations } from './sessions/revocations.js'
import { stored } from './sessions/kit.js'
import { createSessions, type IssuedTokens } from './sessions/sessions.js'
import { createVault } from './sessions/vault.js'
import { openStore } from './stores/open.js'

import { createApi, type WecomApi } from './wecom/api.js'
import { WecomClient } from './wecom/client.js'
import { VerificationCache } from './verification-cache.js'

export interface WecomLoginOptions {
  /** The corp to exchange the code with; the first configured corp when absent. */
  corpId?: string
  /** Handed to `authorize`. */
  request?: FastifyRequest
}

/** What the plugin decorates the instance with, as `app.wecom`. */
export interface WecomAuthDecorator {
  /** onRequest hook: refuses requests without a valid bearer JWT, sets `request.wecomUser`. */
  authenticate: Authenticate
  /**
   * The login flow without the route: verifies a `wx.qy.login` code and starts a session. A code
   * that is not a string of 1 to 512 characters is refused as WECOM_INVALID_CODE without asking
   * WeCom; a corpId that is not a string of 1 to 64 characters as WECOM_INVALID_ARGUMENT.
   */
  login (code: string, options?: WecomLoginOptions): Promise<IssuedTokens>
  /**
   * Ends one session: its refresh token dies, its access tokens are refused everywhere. A sid that
   * is not a string of 1 to 256 characters rejects with WECOM_INVALID_ARGUMENT.
   */
  revokeSession (sid: string): Promise<void>
  /**
   * Off-boarding: ends every session of a member, forgets their session_key, and refuses every
   * access token of theirs issued before it, on every instance. Arguments that are not strings of
   * 1 to 256 characters reject with WECOM_INVALID_ARGUMENT.
   */
  revokeUser (corpId: string, userid: string): Promise<void>
  /**
   * Decrypts what wx.qy.getMobile / getEmail / getEnterpriseUserInfo returned, with the
   * session_key of the member `authenticate` verified on this request. Whatever `data` is, it
   * resolves or rejects with WECOM_DECRYPT_FAILED (or WECOM_TOKEN_MISSING without authenticate).
   */
  decrypt (request: FastifyRequest, data: unknown): Promise<Record<string, unknown>>
  /**
   * The app's other WeCom calls on the login's cached, shared access token (of `corpId`, or the
   * first corp), under the login's rules. A corpId not configured throws WECOM_CORP_UNKNOWN; one
   * that is not a string of 1 to 64 printable ASCII characters WECOM_INVALID_ARGUMENT.
   */
  api (corpId?: string): WecomApi
  /**
   * The raw WeCom access token of `corpId` (or the first corp), for the rare call `api()` cannot
   * make. A secret: never log it, never send it to a client. Rejects as `api()` calls do.
   */
  accessToken (corpId?: string): Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    wecom: WecomAuthDecorator
  }
  interface FastifyRequest {
    /** The member of a verified access token; `null` on routes without `authenticate`. */
    wecomUser: WecomUser | null
    /** `{ sid, iat, exp }` of the verified access token; `null` on routes without `authenticate`. */
    wecomSession: WecomSession | null
    /** The host's own claims of the verified access token (`extendClaims`), frozen; `null` without `authenticate`. */
    wecomClaims: Readonly<Record<string, unknown>> | null
  }
}

const plugin: FastifyPluginAsync<WecomAuthOptions> = async (fastify: FastifyInstance, options) => {
  const config = resolveOptions(options)
  const log = fastify.log.child({ plugin: 'fastify-wecom-auth' })

  // Read from @opentelemetry/api's globals now: the host installs its SDK before registering plugins.
  const telemetry = createTelemetry()
  const { store, closeConnection } = await openStore(fastify, config, log)
  const client = new WecomClient({ ...config.api, counter: store.rateCounter, shared: store.tokens, log, telemetry })
  // Right after opening them, so that a registration failing further on still closes them.
  fastify.addHook('onClose', async () => {
    await Promise.all([client.close(), store.close().then(closeConnection)])
  })
  const accessTokens = createAccessTokens(config.jwt, new Set(config.corps.map((corp) => corp.corpId)), await registerJwtEngine(fastify, config.jwt))
  // The refresh tokens' and the vault's keys derive from the signing key; older keys still open what they sealed.
  const [signing, ...older] = config.jwt.keys
  const keyMaterials = [signing.signKey, ...older.map((key) => key.signKey)] as const
  const revoked = new Revocations()
  await store.onRevoke((revocations) => {
    revoked.add(revocations)
    const sessionsEnded = revocations.filter((revocation) => 'sid' in revocation).length
    telemetry.revoked(sessionsEnded, revocations.length - sessionsEnded)
  })

  const loginFlow = createMiniprogramLogin({
    corps: config.corps, client, timeout: config.api.timeout, memberCheck: createMemberCheck({ client, authorize: config.authorize })
  })
  const sessions = createSessions({
    store,
    tokens: accessTokens,
    refreshTokens: createRefreshTokens(...keyMaterials),
    vault: createVault(...keyMaterials),
    loginFlow,
    accessTtl: config.jwt.expiresIn,
    refreshTtl: config.session.refreshTtl,
    recheckInterval: config.session.recheckInterval,
    reuseGrace: config.session.reuseGrace,
    miniprogramAppId: config.miniprogramAppId,
    hooks: config.hooks,
    extendClaims: config.extendClaims,
    log
  })
  // The route and the decorator alike: one span and one outcome count per login or refresh.
  const login = (code: string, context: LoginContext) => telemetry.operation('login', async () =>
    sessions.start(await loginFlow.login(code, context), context))
  const refresh = (refreshToken: string, context: LoginContext) => telemetry.operation('refresh', () =>
    sessions.refresh(refreshToken, context))
  const authenticate = createGuard({ tokens: accessTokens, revoked, cache: new VerificationCache(config.guard.cacheSize) })
  const wecomApi = createApi({ corps: config.corps, client, timeout: config.api.timeout, log })
  const callbackCorps = config.corps.flatMap(({ corpId, callback }) => callback === undefined ? [] : [{ corpId, ...callback }])
  const offboarding = createOffboarding<FastifyRequest>({
    revokeUser: (corpId, userid, at, request) => sessions.revokeUser(corpId, userid, { at, request }),
    async stillAllowed (corpId, userid, request) {
      try {
        await loginFlow.checkMember(corpId, userid, { log: request.log, request })
        return true
      } catch (error) {
        if (error instanceof UserForbiddenError) return false
        throw error
      }
    },
    // Redis down: 503, and WeCom resends until it is back.
    claimDelivery: (key, lease) => stored(() => store.claimDelivery(key, lease)),
    settleDelivery: (key, id, done, ttl) => store.settleDelivery(key, id, done, ttl),
    lease: deliveryLease(config.api.timeout),
    onEvent: config.onEvent,
    log
  })

  // The decorators take values from the host, often straight from a client: each is checked here,
  // so that a wrong type or size is a typed 4xx and never reaches WeCom or the store.
  const decorator: WecomAuthDecorator = {
    authenticate,
    async login (code, loginOptions) {
      if (!isPrintableAscii(code, MAX_CODE)) throw new InvalidCodeError()
      const { corpId, request } = loginOptions ?? {}
      if (corpId !== undefined) corpIdArgument(corpId)
      return login(code, { corpId, request, log })
    },
    async revokeSession (sid) {
      await sessions.revokeSession(argument('sid', sid))
    },
    async revokeUser (corpId, userid) {
      await sessions.revokeUser(argument('corpId', corpId), argument('userid', userid))
    },
    async decrypt (request, data) {
      const claims = typeof request === 'object' && request !== null ? request[kClaims] : undefined
      if (claims === null || claims === undefined) throw new TokenMissingError()
      return sessions.decrypt(claims, data)
    },
    api (corpId) {
      return wecomApi.api(corpId === undefined ? undefined : corpIdArgument(corpId))
    },
    async accessToken (corpId) {
      return wecomApi.accessToken(corpId === undefined ? undefined : corpIdArgument(corpId))
    }
  }
  fastify.decorate('wecom', decorator)
  fastify.decorateRequest('wecomUser', null)
  fastify.decorateRequest('wecomSession', null)
  fastify.decorateRequest('wecomClaims', null)
  fastify.decorateRequest(kClaims, null)

  await fastify.register(wecomRoutes, {
    prefix: config.prefix,
    login,
    refresh,
    sessions,
    authenticate,
    docs: config.openapi,
    jwks: jwksOf(config.jwt.keys),
    rateLimit: config.rateLimit === false ? false : rateLimitOptions(config.rateLimit, store.rateCounter),
    callback: callbackCorps.length === 0 ? undefined : { corps: callbackCorps, handle: offboarding.handle }
  })
}

/** Far above any WeCom corpid, userid or our sid, far below a size that costs anything. */
const MAX_ARGUMENT = 256

function corpIdArgument (corpId: unknown): string {
  if (!isPrintableAscii(corpId, MAX_CORP_ID)) {
    throw new InvalidArgumentError('corpId', `a string of 1 to ${MAX_CORP_ID} printable ASCII characters`)
  }
  return corpId
}

function argument (name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ARGUMENT) throw new InvalidArgumentError(name, `a string of 1 to ${MAX_ARGUMENT} characters`)
  return value
}

/** The plugin, for `app.register(fastifyWecomAuth, options)`. */
export const fastifyWecomAuth = fp(plugin, { name: 'fastify-wecom-auth', fastify: '5.x' })
export default fastifyWecomAuth

export type {
  WecomAuthOptions, WecomMember, AuthorizeFn, WecomHooks, SessionHook, RevokeHook, ExtendClaimsFn, EventHook
} from './options.js'
export type { WecomUser, WecomSession, Authenticate } from './guard.js'
export type { WecomEvent } from './events/callback.js'
export type { WecomApi, WecomAnswer } from './wecom/api.js'
export type { IssuedTokens, EncryptedUserData } from './sessions/sessions.js'
export {
  ApiCallError, CallbackForbiddenError, CallbackInvalidError, CallbackRetryError, ClaimsInvalidError,
  CorpMismatchError, CorpNotAllowedError, CorpUnknownError, DecryptError, InvalidCodeError,
  InvalidArgumentError, RefreshInvalidError, StoreUnavailableError, TokenExpiredError, TokenInvalidError, TokenMissingError,
  TokenRevokedError, UnavailableError, UpstreamError, UserForbiddenError
} from './errors.js'
