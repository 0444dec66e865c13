import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { TokenMissingError } from './errors.js'
import { createGuard, kClaims, type Authenticate, type WecomUser } from './guard.js'
import { createAccessTokens } from './jwt.js'
import { createLoginFlow } from './login.js'
import { resolveOptions, type WecomAuthOptions } from './options.js'
import { rateLimitOptions } from './rate-limit.js'
import { wecomRoutes } from './routes.js'
import { RevokedSessions } from './sessions/revocations.js'
import { createSessions, type EncryptedUserData, type IssuedTokens } from './sessions/sessions.js'
import { createVault } from './sessions/vault.js'
import { openStore } from './stores/open.js'
import { WecomClient } from './wecom/client.js'
import { withDeadline } from './wecom/deadline.js'
import { TokenCache, tokenKey } from './wecom/token-cache.js'

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
  /** The login flow without the route: verifies a `wx.qy.login` code and starts a session. */
  login (code: string, options?: WecomLoginOptions): Promise<IssuedTokens>
  /** Ends one session: its refresh token dies, its access tokens are refused everywhere. */
  revokeSession (sid: string): Promise<void>
  /** Ends every session of a member (off-boarding). */
  revokeUser (corpId: string, userid: string): Promise<void>
  /**
   * Decrypts what wx.qy.getMobile / getEmail / getEnterpriseUserInfo returned, with the
   * session_key of the member `authenticate` verified on this request.
   */
  decrypt (request: FastifyRequest, data: EncryptedUserData): Promise<Record<string, unknown>>
}

declare module 'fastify' {
  interface FastifyInstance {
    wecom: WecomAuthDecorator
  }
  interface FastifyRequest {
    /** The member of a verified access token; `null` on routes without `authenticate`. */
    wecomUser: WecomUser | null
  }
}

const plugin: FastifyPluginAsync<WecomAuthOptions> = async (fastify: FastifyInstance, options) => {
  const config = resolveOptions(options)
  const log = fastify.log.child({ plugin: 'fastify-wecom-auth' })

  const client = new WecomClient({ ...config.api, log })
  const store = await openStore(fastify, config, log)
  // Right after opening them, so that a registration failing further on still closes them.
  fastify.addHook('onClose', async () => {
    await Promise.all([client.close(), store.close()])
  })
  const tokenCache = new TokenCache({
    // Its own deadline: one fetch serves every login waiting for it, each racing its own deadline.
    fetch: (corp) => withDeadline(config.api.timeout, (deadline) =>
      client.getToken(corp.secret, { deadline, corpId: corp.corpId, app: tokenKey(corp) })),
    shared: store.tokens,
    onSharedStoreDown: () => log.warn('wecom: shared token store unavailable, using a per-process access token until it returns'),
    onSharedStoreUp: () => log.info('wecom: shared token store is back'),
    onBackgroundRefreshError: () => log.warn('wecom: refreshing the access token ahead of expiry failed; will retry on expiry')
  })
  const accessTokens = createAccessTokens(config.jwt)
  const revoked = new RevokedSessions()
  await store.onRevoke((revocations) => revoked.add(revocations))

  const loginFlow = createLoginFlow({
    corps: config.corps, client, tokens: tokenCache, timeout: config.api.timeout, authorize: config.authorize
  })
  const sessions = createSessions({
    store,
    tokens: accessTokens,
    vault: createVault(config.jwt.signKey),
    loginFlow,
    accessTtl: config.jwt.expiresIn,
    refreshTtl: config.session.refreshTtl,
    recheckInterval: config.session.recheckInterval,
    miniprogramAppId: config.miniprogramAppId
  })
  const authenticate = createGuard({ tokens: accessTokens, revoked })

  const decorator: WecomAuthDecorator = {
    authenticate,
    async login (code, loginOptions = {}) {
      const verified = await loginFlow.login(code, { ...loginOptions, log })
      return sessions.start(verified, log)
    },
    revokeSession: (sid) => sessions.revokeSession(sid),
    revokeUser: (corpId, userid) => sessions.revokeUser(corpId, userid),
    async decrypt (request, data) {
      const claims = request[kClaims]
      if (claims === null) throw new TokenMissingError()
      return sessions.decrypt(claims, data)
    }
  }
  fastify.decorate('wecom', decorator)
  fastify.decorateRequest('wecomUser', null)
  fastify.decorateRequest(kClaims, null)

  await fastify.register(wecomRoutes, {
    prefix: config.prefix,
    loginFlow,
    sessions,
    authenticate,
    rateLimit: config.rateLimit === false ? false : rateLimitOptions(config.rateLimit, store.rateCounter)
  })
}

/** The plugin, for `app.register(fastifyWecomAuth, options)`. */
export const fastifyWecomAuth = fp(plugin, { name: 'fastify-wecom-auth', fastify: '5.x' })
export default fastifyWecomAuth

export type { WecomAuthOptions, WecomMember, AuthorizeFn } from './options.js'
export type { WecomUser, Authenticate } from './guard.js'
export type { IssuedTokens, EncryptedUserData } from './sessions/sessions.js'
export {
  CorpMismatchError, CorpNotAllowedError, CorpUnknownError, DecryptError, InvalidCodeError,
  RefreshInvalidError, StoreUnavailableError, TokenExpiredError, TokenInvalidError, TokenMissingError,
  TokenRevokedError, UnavailableError, UpstreamError, UserForbiddenError
} from './errors.js'
