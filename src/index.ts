import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createDecorator, type DecoratorParts, type WecomAuthDecorator } from './decorators.js'
import { InvalidArgumentError, SuiteUnknownError, UserForbiddenError } from './errors.js'
import type { WecomEvent } from './events/callback.js'
import { createOffboarding } from './events/offboarding.js'
import { deliveryLease, type DeliveryClaims } from './events/deliveries.js'
import { createGuard, kByCookie, kClaims, type WecomSession, type WecomUser } from './guard.js'
import { createAccessTokens, jwksOf, registerJwtEngine, type AccessTokens } from './jwt.js'
import { resolveOptions, type ResolvedConfig, type WecomAuthOptions } from './options.js'
import { rateLimitOptions } from './rate-limit.js'
import { createTelemetry, type Telemetry } from './telemetry.js'
import { wecomRoutes, type RoutesOptions } from './routes.js'
import { createMemberCheck } from './surfaces/member-check.js'
import { createMiniprogramLogin } from './surfaces/miniprogram.js'
import { createWebLogin, type WebAppCredentials, type WebLogin } from './surfaces/oauth.js'
import { deriveKey } from './sessions/keys.js'
import { createLoginStates } from './web/state.js'
import type { LoginContext, LoginFlow } from './member.js'
import { stored } from './sessions/kit.js'
import { createRefreshTokens } from './sessions/refresh-tokens.js'
import { Revocations } from './sessions/revocations.js'
import { createSessions, type IssuedTokens, type Sessions } from './sessions/sessions.js'
import { createProvider, storedTickets, type Provider } from './suites/provider.js'
import type { SuiteWebLogin } from './surfaces/suite-web.js'
import { createVault } from './sessions/vault.js'
import { openStore } from './stores/open.js'
import type { SessionStore, SuiteTicketStore } from './stores/store.js'

import { createApi } from './wecom/api.js'
import { WecomClient } from './wecom/client.js'
import { VerificationCache } from './verification-cache.js'

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
  const parts = await createParts(fastify, config, log)
  fastify.decorate('wecom', createDecorator(parts))
  fastify.decorateRequest('wecomUser', null)
  fastify.decorateRequest('wecomSession', null)
  fastify.decorateRequest('wecomClaims', null)
  fastify.decorateRequest(kClaims, null)
  fastify.decorateRequest(kByCookie, false)
  await fastify.register(wecomRoutes, routesOptions(config, parts))
}

/** Every part of the plugin, wired together: what the decorator and the routes hand work to. */
interface Parts extends DecoratorParts {
  store: SessionStore
  sessions: Sessions
  /** The browser's way in, when a corp has `web`. */
  web?: RoutesOptions['web']
  refresh (refreshToken: string, context: LoginContext): Promise<IssuedTokens>
  handleEvent (corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void>
  /** The service provider's parts, with `suites`. */
  provider: Provider | undefined
}

async function createParts (fastify: FastifyInstance, config: ResolvedConfig, log: FastifyBaseLogger): Promise<Parts> {
  // Read from @opentelemetry/api's globals now: the host installs its SDK before registering plugins.
  const telemetry = createTelemetry()
  const { store, client, tickets } = await openBackends(fastify, config, log, telemetry)
  const corpIds: ReadonlySet<string> = new Set(config.corps.map((corp) => corp.corpId))
  const suiteIds: ReadonlySet<string> = new Set(config.suites?.map((suite) => suite.suiteId))
  const accessTokens = createAccessTokens(config.jwt, { corpIds, suiteIds }, await registerJwtEngine(fastify, config.jwt))
  // Once, for the guard, csrfProtection and the web routes alike.
  const origins: ReadonlySet<string> | undefined = config.web === undefined ? undefined : new Set(config.web.origins)
  const revoked = await followRevocations(store, telemetry)
  const memberCheck = createMemberCheck({ client, authorize: config.authorize })
  const webApps = webAppsOf(config)
  const webLogin = createWebLogin({ client, memberCheck, timeout: config.api.timeout })
  // Claims on callback deliveries, shared by the suites' pushes and the corps' off-boarding.
  const claims = deliveryClaims(config, store)
  // The off-boarding is built after the sessions, which need the login flow, which needs the
  // provider: a push reaches it only once the plugin is ready.
  const provider = createProvider(config, {
    store,
    tickets,
    client,
    memberCheck,
    claims,
    contactEvent: (corpId, event, request) => offboarding.handle(corpId, event, request),
    log
  })
  const miniprogram = createMiniprogramLogin({ corps: config.corps, client, timeout: config.api.timeout, memberCheck })
  const loginFlow = loginFlowOf({ miniprogram, provider, corpIds }, webApps, webLogin)
  const sessions = sessionsOf(config, store, accessTokens, loginFlow, log)
  const offboarding = offboardingOf(config, claims, sessions, loginFlow, log)
  return {
    store,
    sessions,
    // The route and the decorator alike: one span and one outcome count per login or refresh.
    login: (code, context) => telemetry.operation('login', async () =>
      sessions.start(await loginFlow.login(code, context), context)),
    refresh: (refreshToken, context) => telemetry.operation('refresh', () =>
      sessions.refresh(refreshToken, context)),
    authenticate: createGuard({ tokens: accessTokens, revoked, cache: new VerificationCache(config.guard.cacheSize, Date.now, config.jwt.keys.some((key) => key.algorithm === 'ES256')), cookie: cookieOf(config, origins) }),
    web: webOf(config, { apps: webApps, corpIds, origins, suites: provider?.web }, webLogin, store, client, sessions, telemetry),
    origins,
    wecomApi: createApi({ corps: config.corps, installed: provider?.installedCorp, client, timeout: config.api.timeout, log }),
    handleEvent: offboarding.handle,
    provider,
    log
  }
}

/** The guard's access cookie and the origins its requests must come from, when browser sessions are on. */
function cookieOf ({ web }: ResolvedConfig, origins: ReadonlySet<string> | undefined): { name: string, origins: ReadonlySet<string> } | undefined {
  return web === undefined || origins === undefined ? undefined : { name: web.cookie.access, origins }
}

/** The corps' self-built apps for the browser, by corpId, in the order of `corps`. */
function webAppsOf (config: ResolvedConfig): ReadonlyMap<string, WebAppCredentials> {
  return new Map(config.corps.flatMap(({ corpId, web }) => web === undefined ? [] : [[corpId, { corpId, ...web }] as const]))
}

/**
 * The mini program's login, a configured corp's or a suite's; a session's recheck on the app of
 * its surface, or of its suite; whether a suite's corp still has it installed.
 */
function loginFlowOf (
  { miniprogram, provider, corpIds }: { miniprogram: LoginFlow, provider: Provider | undefined, corpIds: ReadonlySet<string> },
  webApps: ReadonlyMap<string, WebAppCredentials>, webLogin: WebLogin
): LoginFlow {
  // With suites alone and one of them, a login need not name it.
  const onlySuite = corpIds.size === 0 && provider?.suiteIds.length === 1 ? provider.suiteIds[0] : undefined
  return {
    login (code, context) {
      if (provider === undefined && context.suiteId !== undefined) return Promise.reject(new SuiteUnknownError(context.suiteId))
      if (provider === undefined || (context.suiteId === undefined && corpIds.size > 0)) return miniprogram.login(code, context)
      const suiteId = context.suiteId ?? onlySuite
      if (suiteId === undefined) return Promise.reject(new InvalidArgumentError('suiteId', 'given: this server serves several suites'))
      return provider.login.login(code, Object.assign({}, context, { suiteId }))
    },
    checkMember (corpId, userid, context, surface, suiteId) {
      // A session of a suite's corp, or a contact event of a corp not configured (which names no suite).
      if (provider !== undefined && (suiteId !== undefined || !corpIds.has(corpId))) return provider.login.checkMember(suiteId, corpId, userid, context)
      const app = surface === 'h5' || surface === 'web' ? webApps.get(corpId) : undefined
      return app === undefined ? miniprogram.checkMember(corpId, userid, context) : webLogin.checkMember(app, userid, context)
    },
    ...(provider === undefined ? {} : { installed: provider.login.installed })
  }
}

/** The web login's parts, with `web` and a corp's web app or suites: its apps, states, cookies and flow. */
function webOf (
  config: ResolvedConfig,
  { apps, corpIds, origins, suites }: { apps: ReadonlyMap<string, WebAppCredentials>, corpIds: ReadonlySet<string>, origins: ReadonlySet<string> | undefined, suites: SuiteWebLogin | undefined },
  webLogin: WebLogin, store: SessionStore, client: WecomClient, sessions: Sessions, telemetry: Telemetry
): RoutesOptions['web'] {
  if ((apps.size === 0 && suites === undefined) || config.web === undefined || origins === undefined) return undefined
  return {
    apps,
    corpIds,
    suites,
    origins,
    redirects: config.web.redirects,
    urls: { authorize: config.api.authorizeUrl, sso: config.api.ssoUrl },
    // A state is claimed like a delivery, and never settled: its claim lapses with the state.
    states: createLoginStates(deriveKey(config.jwt.keys[0].signKey, 'web login state'),
      async (key, ttl) => (await stored(() => store.claimDelivery(key, ttl))).state === 'new'),
    options: config.web,
    login: webLogin.login,
    start: (verified, context) => telemetry.operation('login', () => sessions.start(verified, context)),
    client,
    timeout: config.api.timeout
  }
}

/** The store and WeCom's client, closed with the instance. */
async function openBackends (fastify: FastifyInstance, config: ResolvedConfig, log: FastifyBaseLogger, telemetry: Telemetry): Promise<{ store: SessionStore, client: WecomClient, tickets: SuiteTicketStore }> {
  const { store, closeConnection } = await openStore(fastify, config, log)
  const tickets = storedTickets(store)
  const client = new WecomClient({
    ...config.api,
    counter: store.rateCounter,
    shared: store.tokens,
    suiteTicketOf: async (suiteId) => (await tickets.get(suiteId))?.ticket ?? null,
    log,
    telemetry
  })
  // Right after opening them, so that a registration failing further on still closes them.
  fastify.addHook('onClose', async () => {
    await Promise.all([client.close(), store.close().then(closeConnection)])
  })
  return { store, client, tickets }
}

/** The sessions and members revoked on any instance, as this one's guard refuses them. */
async function followRevocations (store: SessionStore, telemetry: Telemetry): Promise<Revocations> {
  const revoked = new Revocations()
  await store.onRevoke((revocations) => {
    revoked.add(revocations)
    const sessionsEnded = revocations.filter((revocation) => 'sid' in revocation).length
    telemetry.revoked(sessionsEnded, revocations.length - sessionsEnded)
  })
  return revoked
}

function sessionsOf (config: ResolvedConfig, store: SessionStore, tokens: AccessTokens, loginFlow: LoginFlow, log: FastifyBaseLogger): Sessions {
  // The refresh tokens' and the vault's keys derive from the signing key; older keys still open what they sealed.
  const [signing, ...older] = config.jwt.keys
  const keyMaterials = [signing.signKey, ...older.map((key) => key.signKey)] as const
  return createSessions({
    store,
    tokens,
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
}

/** What WeCom's callback events do to sessions. */
function offboardingOf (config: ResolvedConfig, claims: Omit<DeliveryClaims, 'log'>, sessions: Sessions, loginFlow: LoginFlow, log: FastifyBaseLogger) {
  return createOffboarding<FastifyRequest>({
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
    ...claims,
    onEvent: config.onEvent,
    log
  })
}

/**
 * The store's claims on callback deliveries. Redis down: 503, and WeCom resends until it is back.
 * Each as the errors table says it: an ioredis error carries its command, which must not reach the
 * log lines of a failed settle.
 */
function deliveryClaims (config: ResolvedConfig, store: SessionStore): Omit<DeliveryClaims, 'log'> {
  return {
    claimDelivery: (key, lease) => stored(() => store.claimDelivery(key, lease)),
    settleDelivery: (key, id, done, ttl) => stored(() => store.settleDelivery(key, id, done, ttl)),
    renewDelivery: (key, id, lease) => stored(() => store.renewDelivery(key, id, lease)),
    lease: deliveryLease(config.api.timeout)
  }
}

function routesOptions (config: ResolvedConfig, parts: Parts): RoutesOptions & { prefix: string } {
  const callbackCorps = config.corps.flatMap(({ corpId, callback }) => callback === undefined ? [] : [{ corpId, ...callback }])
  return {
    prefix: config.prefix,
    login: parts.login,
    refresh: parts.refresh,
    sessions: parts.sessions,
    authenticate: parts.authenticate,
    docs: config.openapi,
    jwks: jwksOf(config.jwt.keys),
    rateLimit: config.rateLimit === false ? false : rateLimitOptions(config.rateLimit, parts.store.rateCounter),
    callback: callbackCorps.length === 0 ? undefined : { corps: callbackCorps, handle: parts.handleEvent },
    suiteCallback: parts.provider?.callback,
    web: parts.web
  }
}

/** The plugin, for `app.register(fastifyWecomAuth, options)`. */
export const fastifyWecomAuth = fp(plugin, { name: 'fastify-wecom-auth', fastify: '5.x' })
export default fastifyWecomAuth

export type {
  WecomAuthOptions, WecomMember, AuthorizeFn, WecomHooks, SessionHook, RevokeHook, ExtendClaimsFn, EventHook, CorpHook
} from './options.js'
export type { WecomAuthDecorator, WecomLoginOptions } from './decorators.js'
export type { WecomUser, WecomSession, Authenticate } from './guard.js'
export type { WecomEvent } from './events/callback.js'
export type { WecomApi, WecomAnswer } from './wecom/api.js'
export type { IssuedTokens, EncryptedUserData, SessionSummary } from './sessions/sessions.js'
export type { Surface, WecomProfile } from './member.js'
export type { AuthorizedCorp } from './suites/options.js'
export {
  ApiCallError, CallbackForbiddenError, CallbackInvalidError, CallbackRetryError, ClaimsInvalidError,
  CorpMismatchError, CorpNotAllowedError, CorpUnknownError, CsrfError, DecryptError, InvalidCodeError,
  InvalidArgumentError, RateLimitedError, RedirectInvalidError, RefreshInvalidError, StateInvalidError, StoreUnavailableError,
  SuiteUnknownError, TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError, UnavailableError, UpstreamError,
  UrlNotAllowedError, UserForbiddenError, WebNotConfiguredError
} from './errors.js'
