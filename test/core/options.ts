import t from 'tap'
import Fastify from 'fastify'
import fastifyWecomAuth, { fastifyWecomAuth as named } from '../../src/index.js'
import { CORP_A, CORP_B, JWT_SECRET, SECRET_A, SECRET_B } from '../helpers/setup.js'

const valid = () => ({ corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET } })

async function registrationError (options: unknown): Promise<string> {
  const app = Fastify()
  try {
    await app.register(fastifyWecomAuth, options as never)
    await app.ready()
    return 'no error'
  } catch (error) {
    return (error as Error).message
  } finally {
    await app.close().catch(() => {})
  }
}

t.test('bad options fail the registration with a message naming the option', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['no options', undefined, /corps is required/],
    ['no corps', { jwt: { secret: JWT_SECRET } }, /corps is required/],
    ['empty corps', { ...valid(), corps: [] }, /corps must list at least one corp/],
    ['missing secret', { ...valid(), corps: [{ corpId: CORP_A }] }, /corps\[0\]\.secret is required/],
    ['empty secret', { ...valid(), corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_B, secret: '' }] }, /corps\[1\]\.secret must not be empty/],
    ['missing corpId', { ...valid(), corps: [{ secret: SECRET_A }] }, /corps\[0\]\.corpId is required/],
    ['repeated corpId', { ...valid(), corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_A, secret: 'other' }] }, /corps\[1\]\.corpId repeats/],
    ['no jwt', { corps: valid().corps }, /jwt is required/],
    ['no jwt secret', { ...valid(), jwt: {} }, /jwt\.secret is required/],
    ['short jwt secret', { ...valid(), jwt: { secret: 'short' } }, /jwt\.secret must be at least 32 characters/],
    ['half a key pair', { ...valid(), jwt: { private: 'x' } }, /jwt\.public is required/],
    ['secret and key pair', { ...valid(), jwt: { secret: JWT_SECRET, private: 'a', public: 'b' } }, /jwt\.secret cannot be combined/],
    ['not a public key', { ...valid(), jwt: { private: 'a', public: 'b' } }, /jwt\.public is not a valid PEM public key/],
    ['negative expiresIn', { ...valid(), jwt: { secret: JWT_SECRET, expiresIn: -1 } }, /jwt\.expiresIn must be positive/],
    ['prefix without slash', { ...valid(), prefix: 'wecom' }, /prefix must start with \//],
    ['bad base URL', { ...valid(), api: { baseUrl: 'ftp://x' } }, /api\.baseUrl must be an http\(s\) URL/],
    ['bad proxy', { ...valid(), api: { proxy: 'nope' } }, /api\.proxy must be an http\(s\) proxy URL/],
    ['bad timeout', { ...valid(), api: { timeout: 0 } }, /api\.timeout must be positive/],
    ['bad dispatcher', { ...valid(), api: { dispatcher: {} } }, /api\.dispatcher must be an undici Dispatcher/],
    ['bad breaker', { ...valid(), api: { breaker: 'on' } }, /api\.breaker must be an object or false/],
    ['bad breaker failures', { ...valid(), api: { breaker: { failures: 0 } } }, /api\.breaker\.failures must be positive/],
    ['bad breaker cool-down', { ...valid(), api: { breaker: { coolDown: 1.5 } } }, /api\.breaker\.coolDown must be a whole number/],
    ['bad refusal window', { ...valid(), api: { refusals: { config: -5 } } }, /api\.refusals\.config must be positive/],
    ['bad budget', { ...valid(), api: { budget: true } }, /api\.budget must be a number of calls a minute or false/],
    ['bad rate limit', { ...valid(), rateLimit: 100 }, /rateLimit must be an object of @fastify\/rate-limit options or false/],
    ['bad rate limit max', { ...valid(), rateLimit: { max: -1 } }, /rateLimit\.max must be positive/],
    ['bad rate limit key', { ...valid(), rateLimit: { keyGenerator: 'ip' } }, /rateLimit\.keyGenerator must be a function/],
    ['bad rate limit window', { ...valid(), rateLimit: { timeWindow: -1 } }, /rateLimit\.timeWindow must be positive/],
    // A string is read as @fastify/rate-limit reads it (@lukeed/ms), within the bounds of a number.
    ['rate limit window not a duration', { ...valid(), rateLimit: { timeWindow: 'soon' } }, /rateLimit\.timeWindow must be milliseconds or a duration such as "1 minute"/],
    ['empty rate limit window', { ...valid(), rateLimit: { timeWindow: '' } }, /rateLimit\.timeWindow must be milliseconds or a duration such as "1 minute"/],
    ['rate limit window under a millisecond', { ...valid(), rateLimit: { timeWindow: '0.4 ms' } }, /rateLimit\.timeWindow must be at least 1 ms/],
    ['negative rate limit window string', { ...valid(), rateLimit: { timeWindow: '-1 minute' } }, /rateLimit\.timeWindow must be at least 1 ms/],
    ['rate limit window string past setTimeout\'s range', { ...valid(), rateLimit: { timeWindow: '30 days' } }, /rateLimit\.timeWindow must be at most 2147483647 ms/],
    ['timeout past setTimeout\'s range', { ...valid(), api: { timeout: 2 ** 31 } }, /api\.timeout must be at most 2147483647 ms/],
    ['cool-down past setTimeout\'s range', { ...valid(), api: { breaker: { coolDown: 2 ** 40 } } }, /api\.breaker\.coolDown must be at most/],
    ['misspelt breaker key', { ...valid(), api: { breaker: { failure: 3 } } }, /unknown option "api\.breaker\.failure" \(api\.breaker takes failures, ratio, window, coolDown\)/],
    ['misspelt refusals key', { ...valid(), api: { refusals: { conf: 1 } } }, /unknown option "api\.refusals\.conf" \(api\.refusals takes config, frequency, concurrency\)/],
    ['authorize not a function', { ...valid(), authorize: true }, /authorize must be a function/],
    ['bad refreshTtl', { ...valid(), session: { refreshTtl: 'long' } }, /session\.refreshTtl must be a number of seconds/],
    // A session ending before its access token would leave that token beyond every session operation.
    ['refreshTtl below expiresIn', { ...valid(), jwt: { secret: JWT_SECRET, expiresIn: 600 }, session: { refreshTtl: 599 } },
      /session\.refreshTtl must be at least jwt\.expiresIn \(600\)/],
    // A default is fitted to the options given (below), but never made longer to fit one.
    ['reuseGrace as long as a given refreshTtl', { ...valid(), session: { refreshTtl: 60, reuseGrace: 60 } }, /session\.reuseGrace must be shorter than jwt\.expiresIn \(60\)/],
    ['negative reuseGrace', { ...valid(), session: { reuseGrace: -1 } }, /session\.reuseGrace must not be negative/],
    ['fractional reuseGrace', { ...valid(), session: { reuseGrace: 1.5 } }, /session\.reuseGrace must be a whole number/],
    ['reuseGrace not a number', { ...valid(), session: { reuseGrace: '30' } }, /session\.reuseGrace must be a number of seconds/],
    ['reuseGrace as long as expiresIn', { ...valid(), jwt: { secret: JWT_SECRET, expiresIn: 60 }, session: { reuseGrace: 60 } },
      /session\.reuseGrace must be shorter than jwt\.expiresIn \(60\)/],
    ['empty audience', { ...valid(), jwt: { secret: JWT_SECRET, audience: '' } }, /jwt\.audience must not be empty/],
    ['bad guard cache size', { ...valid(), guard: { cacheSize: 0 } }, /guard\.cacheSize must be positive/],
    ['fractional guard cache size', { ...valid(), guard: { cacheSize: 1.5 } }, /guard\.cacheSize must be a whole number/],
    ['guard cache size not a number', { ...valid(), guard: { cacheSize: '1000' } }, /guard\.cacheSize must be a whole number/],
    ['misspelt guard key', { ...valid(), guard: { size: 10 } }, /unknown option "guard\.size" \(guard takes cacheSize\)/],
    ['bad maxSessions', { ...valid(), session: { maxSessions: 0 } }, /session\.maxSessions must be positive/],
    ['maxSessions not a number', { ...valid(), session: { maxSessions: 'many' } }, /session\.maxSessions must be a whole number/],
    ['bad redis', { ...valid(), store: { redis: 'http://localhost' } }, /store\.redis must be a redis:\/\/ URL/],
    ['bad redis type', { ...valid(), store: { redis: 42 } }, /store\.redis must be a redis:\/\/ URL, a list of Cluster node URLs, or an ioredis client/],
    ['bad cluster node', { ...valid(), store: { redis: ['redis://127.0.0.1:7000', 'http://x'] } }, /store\.redis\[1\] must be a redis:\/\/ URL/]
  ]
  for (const [name, options, message] of cases) {
    t.match(await registrationError(options), message, name)
  }
})

t.test('a misspelt option fails the registration, naming it with its path and the keys its object takes', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['top level', { ...valid(), sessoin: { refreshTtl: 60 } },
      /unknown option "sessoin": the known options are corps, jwt, prefix, api, rateLimit, authorize, hooks, extendClaims, openapi, onEvent, miniprogramAppId, guard, session, web, provider, suites, sealKeys, store$/],
    ['two at once', { ...valid(), sessoin: {}, prefx: '/x' }, /unknown options "sessoin", "prefx": the known options are corps, /],
    ['jwt', { ...valid(), jwt: { secret: JWT_SECRET, expiresin: 60 } },
      /unknown option "jwt\.expiresin" \(jwt takes secret, private, public, keys, expiresIn, issuer, audience\)/],
    ['a jwt key', { ...valid(), jwt: { keys: [{ kid: 'a', secret: JWT_SECRET, expiresIn: 60 }] } },
      /unknown option "jwt\.keys\[0\]\.expiresIn" \(jwt\.keys\[0\] takes kid, secret\)/],
    ['a corp', { ...valid(), corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_B, secret: SECRET_B, calback: {} }] },
      /unknown option "corps\[1\]\.calback" \(corps\[1\] takes corpId, secret, callback, web\)/],
    ['a callback', { ...valid(), corps: [{ corpId: CORP_A, secret: SECRET_A, callback: { token: 't', encodingAESKey: 'a'.repeat(43), aesKey: 'x' } }] },
      /unknown option "corps\[0\]\.callback\.aesKey" \(corps\[0\]\.callback takes token, encodingAESKey\)/],
    ['api', { ...valid(), api: { timeOut: 1000 } },
      /unknown option "api\.timeOut" \(api takes baseUrl, authorizeUrl, ssoUrl, timeout, proxy, dispatcher, breaker, refusals, budget, clientShare\)/],
    ['session', { ...valid(), session: { reuseGrase: 5 } },
      /unknown option "session\.reuseGrase" \(session takes refreshTtl, recheckInterval, maxSessions, reuseGrace\)/],
    ['store', { ...valid(), store: { keyprefix: 'x:' } }, /unknown option "store\.keyprefix" \(store takes redis, keyPrefix\)/],
    ['openapi', { ...valid(), openapi: { tags: ['x'] } }, /unknown option "openapi\.tags" \(openapi takes tag, hide\)/],
    // Not one of @fastify/rate-limit's names either.
    ['rateLimit', { ...valid(), rateLimit: { maxx: 5 } }, /unknown option "rateLimit\.maxx" \(rateLimit takes max, timeWindow, keyGenerator, skipOnError, /]
  ]
  for (const [name, options, message] of cases) {
    t.match(await registrationError(options), message, name)
  }
})

t.test('every option of @fastify/rate-limit\'s, and Fastify\'s own register options, are taken', async (t) => {
  t.equal(await registrationError({
    ...valid(),
    logLevel: 'warn',
    rateLimit: {
      max: 5,
      timeWindow: '1 minute',
      allowList: ['192.0.2.1'],
      ban: 10,
      groupId: 'wecom',
      skipOnError: true,
      enableDraftSpec: false,
      addHeaders: { 'retry-after': false },
      addHeadersOnExceeding: { 'x-ratelimit-remaining': false },
      onExceeded: () => {}
    }
  }), 'no error')
})

t.test('a default tied to another option fits the value given for it', async (t) => {
  const { resolveOptions } = await import('../../src/options.js')
  const fitted = (options: object) => {
    const { jwt, session } = resolveOptions({ ...valid(), ...options })
    return { expiresIn: jwt.expiresIn, refreshTtl: session.refreshTtl, reuseGrace: session.reuseGrace }
  }
  t.same(fitted({}), { expiresIn: 900, refreshTtl: 30 * 24 * 3600, reuseGrace: 30 }, 'the defaults')
  // The grace hands out a rotation's access token again: at most half its life, so it is still good.
  t.same(fitted({ jwt: { secret: JWT_SECRET, expiresIn: 5 } }), { expiresIn: 5, refreshTtl: 30 * 24 * 3600, reuseGrace: 2 })
  t.same(fitted({ jwt: { secret: JWT_SECRET, expiresIn: 1 } }), { expiresIn: 1, refreshTtl: 30 * 24 * 3600, reuseGrace: 0 })
  t.same(fitted({ jwt: { secret: JWT_SECRET, expiresIn: 60 } }), { expiresIn: 60, refreshTtl: 30 * 24 * 3600, reuseGrace: 30 })
  // A session lives at least its access token, an access token at most its session.
  t.same(fitted({ jwt: { secret: JWT_SECRET, expiresIn: 60 * 24 * 3600 } }), { expiresIn: 60 * 24 * 3600, refreshTtl: 60 * 24 * 3600, reuseGrace: 30 })
  t.same(fitted({ session: { refreshTtl: 60 } }), { expiresIn: 60, refreshTtl: 60, reuseGrace: 30 })
  t.same(fitted({ session: { refreshTtl: 1 } }), { expiresIn: 1, refreshTtl: 1, reuseGrace: 0 })
  t.same(fitted({ session: { reuseGrace: 100 } }), { expiresIn: 900, refreshTtl: 30 * 24 * 3600, reuseGrace: 100 }, 'a grace given is kept')
  // Found in review: a grace past the default access token's life failed against that default.
  t.same(fitted({ session: { reuseGrace: 1000 } }), { expiresIn: 2000, refreshTtl: 30 * 24 * 3600, reuseGrace: 1000 }, 'an access token at least twice the grace given')
  t.equal(await registrationError({ ...valid(), jwt: { secret: JWT_SECRET, expiresIn: 5 } }), 'no error', 'jwt.expiresIn alone boots')

  // Calls that hang end together at their deadline, after the calls sent beside them: a window
  // shorter than twice the deadline took the ratio of the hung ones alone and opened the breaker
  // on a WeCom that dropped one call in twenty.
  const window = (api: object) => {
    const { breaker } = resolveOptions({ ...valid(), api }).api
    return breaker === false ? false : breaker.window
  }
  t.equal(window({}), 10_000, 'the default window')
  t.equal(window({ timeout: 15_000 }), 30_000, 'twice a longer api.timeout')
  t.equal(window({ timeout: 15_000, breaker: { window: 5000 } }), 5000, 'a window given is kept')
  t.equal(window({ breaker: false }), false)
})

t.test('refreshTtl equal to expiresIn and a reuseGrace of 0 are accepted', async (t) => {
  t.equal(await registrationError({ ...valid(), jwt: { secret: JWT_SECRET, expiresIn: 600 }, session: { refreshTtl: 600, reuseGrace: 0 } }), 'no error')
})

t.test('secrets are never echoed in validation messages', async (t) => {
  const message = await registrationError({ corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: 'short-but-secret' } })
  t.notMatch(message, /short-but-secret/)
  t.notMatch(message, new RegExp(SECRET_A))
})

t.test('the caller\'s options object is not mutated', async (t) => {
  const options = valid()
  const snapshot = JSON.stringify(options)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, options)
  await app.ready()
  t.equal(JSON.stringify(options), snapshot)
})

t.test('default and named exports are the same plugin, named for fastify', async (t) => {
  t.equal(named, fastifyWecomAuth)
  t.equal((fastifyWecomAuth as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'fastify-wecom-auth')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, valid())
  await app.ready()
  t.ok(app.hasDecorator('wecom'))
  t.ok(app.hasRequestDecorator('wecomUser'))
  t.notOk(app.hasRequestDecorator('user'), 'request.user is left to the host')
  t.notOk(app.hasDecorator('jwt'), 'app.jwt is left to the host')
})

t.test('registering twice is refused by fastify-plugin\'s name', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, valid())
  await t.rejects(async () => { await app.register(fastifyWecomAuth, valid()) })
})
