import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from 'fastify'
import fastifyWecomAuth from 'fastify-wecom-auth'
import { baselineLogin } from './baseline-login.js'
import { ACCESS_TTL, CORP_A, CORPS, JWT_SECRET, pluginJwt, PROVIDER_CORP, SEAL_KEYS, SOAK_TIMEOUT, SUITE, WEB_APP, WEB_ORIGIN, type BenchKeyPair } from './fixtures.js'
import { WecomStub } from './wecom-stub.js'

export interface AppSpec {
  /** The simulator's URL; WeCom is answered in-process by WecomStub when absent (memory scenario). */
  simUrl?: string
  /** redis:// URL for the plugin's shared store, or a Redis Cluster's node URLs; the in-process store when absent. */
  redis?: string | string[]
  /** The fault soak's WeCom settings: deadline and refusal windows short enough to see many in a run. */
  faults?: true
  /** ES256 keys for the plugin and /plain, instead of the HS256 secret (the logins keep it). */
  keyPair?: BenchKeyPair
  /** Also a service provider's (scenario 8): the bench suite, its callback and its corps' logins, beside the corps' own. */
  provider?: true
  /** The guard's cache capacity (`guard.cacheSize`), for scenario 9's full cache; the default otherwise. */
  cacheSize?: number
}

/** The one route body every auth variant serves, so that only what guards it differs. */
const hello = async () => ({ hello: 'world' })

/**
 * The cheapest onRequest hook there is, for /hook: what any guard costs before it does anything
 * (fastify runs a route's hooks in a loop of its own), so that /plugin / /hook is what the guard's
 * work costs. `app.wecom.authenticate` is a hook of this same callback shape.
 */
function noop (_request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  done()
}

/**
 * Every variant in one app, so that they share the process, the logger setting (off), the key
 * and the route body:
 * - GET /none, GET /hook (a no-op onRequest hook), GET /plain (@fastify/jwt in its own context),
 *   GET /plugin (app.wecom.authenticate)
 * - POST /wecom/login (the plugin) and POST /baseline/login (the article's flow).
 */
export async function buildApp ({ simUrl, redis, faults, keyPair, provider, cacheSize }: AppSpec): Promise<FastifyInstance> {
  const api = simUrl === undefined ? { baseUrl: 'http://wecom.invalid', dispatcher: new WecomStub() } : { baseUrl: simUrl }
  const app = Fastify({ logger: false })
  await app.register(fastifyWecomAuth, {
    corps: CORPS.map(({ corpId, secret }) => ({ corpId, secret, ...(corpId === CORP_A.corpId ? { web: WEB_APP } : {}) })),
    web: { origins: [WEB_ORIGIN] },
    jwt: pluginJwt(keyPair),
    // The benchmark measures throughput from one loopback address: the per-client rate limit and
    // the outbound budget, which exist to stop exactly that, are off.
    api: { ...api, budget: false, ...(faults === true ? { timeout: SOAK_TIMEOUT, refusals: { frequency: 1000 } } : {}) },
    rateLimit: false,
    ...(cacheSize === undefined ? {} : { guard: { cacheSize } }),
    ...(redis === undefined ? {} : { store: { redis } }),
    ...(provider === true ? { provider: { corpId: PROVIDER_CORP }, suites: [SUITE], sealKeys: SEAL_KEYS } : {})
  })
  await app.register(baselineLogin, { prefix: '/baseline', ...api, corp: CORPS[0], jwtSecret: JWT_SECRET, expiresIn: ACCESS_TTL })

  app.get('/none', hello)
  app.get('/hook', { onRequest: noop }, hello)
  app.get('/plugin', { onRequest: app.wecom.authenticate }, hello)
  // What /wecom/jssdk/signature is compared with: a POST of the same body, authenticated, answered at once.
  app.post('/authed', { onRequest: app.wecom.authenticate }, async (request) => ({ url: (request.body as { url: string }).url }))
  await app.register(async (plain) => {
    await plain.register(fastifyJwt, { secret: keyPair === undefined ? JWT_SECRET : { private: keyPair.privateKey, public: keyPair.publicKey } })
    plain.get('/plain', { onRequest: async (request) => { await request.jwtVerify() } }, hello)
  })
  return app
}
