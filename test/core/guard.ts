import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { createSigner } from 'fast-jwt'
import fastifyWecomAuth from '../../src/index.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, JWT_SECRET, SECRET_A, buildApp, setup, simulatorCorps } from '../helpers/setup.js'

const INVALID = 'Bearer realm="wecom", error="invalid_token"'
const nowSeconds = () => Math.floor(Date.now() / 1000)
const validClaims = () => ({
  userid: 'zhangsan', corpid: CORP_A, sid: 'abcdefghijklmnopqrstuv', aud: 'fastify-wecom-auth', iat: nowSeconds(), iat_ms: Date.now(), exp: nowSeconds() + 600
})
/** Signs as the plugin does (HS256, typed at+jwt) whatever claims it is given. */
const ours = (options: { key?: string, algorithm?: 'HS256' | 'ES256', header?: { alg: string, typ: string }, noTimestamp?: boolean } = {}) =>
  createSigner({ key: JWT_SECRET, algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' }, ...options })

async function me (app: Awaited<ReturnType<typeof buildApp>>['app'], authorization?: string) {
  return app.inject({ url: '/api/me', headers: authorization === undefined ? {} : { authorization } })
}

t.test('no token: 401 WECOM_TOKEN_MISSING with a bare Bearer challenge', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  for (const authorization of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ']) {
    const res = await me(app, authorization)
    t.equal(res.statusCode, 401, String(authorization))
    t.equal(res.json().code, 'WECOM_TOKEN_MISSING')
    t.equal(res.headers['www-authenticate'], 'Bearer realm="wecom"')
  }
})

t.test('each kind of bad token is refused with 401 WECOM_TOKEN_INVALID and invalid_token', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const good = ours()(validClaims())
  t.equal((await me(app, `Bearer ${good}`)).statusCode, 200, 'the control token is accepted')

  const [header, payload, signature] = good.split('.')
  const tamperedPayload = Buffer.from(JSON.stringify({ ...validClaims(), userid: 'boss' })).toString('base64url')
  const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const bad: Record<string, string> = {
    'signed with another key': ours({ key: 'another-secret-that-is-long-enough-0123456789' })(validClaims()),
    'alg none': `${noneHeader}.${payload}.`,
    'alg none with the old signature': `${noneHeader}.${payload}.${signature}`,
    tampered: `${header}.${tamperedPayload}.${signature}`,
    'another algorithm (ES256)': ours({ key: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, algorithm: 'ES256', header: { alg: 'ES256', typ: 'at+jwt' } })(validClaims()),
    'missing userid': ours()({ ...validClaims(), userid: undefined }),
    'missing corpid': ours()({ ...validClaims(), corpid: undefined }),
    'missing sid': ours()({ ...validClaims(), sid: undefined }),
    'missing exp': ours({ noTimestamp: true })({ userid: 'zhangsan', corpid: CORP_A, sid: 'abcdefghijklmnopqrstuv' }),
    'userid not a string': ours()({ ...validClaims(), userid: 42 }),
    'not a JWT': 'not-a-jwt',
    garbage: 'a.b.c'
  }
  for (const [name, token] of Object.entries(bad)) {
    const res = await me(app, `Bearer ${token}`)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'WECOM_TOKEN_INVALID', name)
    t.equal(res.headers['www-authenticate'], INVALID, name)
  }
})

t.test('only the plugin\'s own access tokens pass: typed at+jwt, its audience, a served corp, a member, a session, its life', async (t) => {
  const h = await setup(t, { jwt: { secret: JWT_SECRET, expiresIn: 600 } })
  const login = (await h.login('zhangsan')).json()
  const [header, payload] = login.access_token.split('.').slice(0, 2).map((part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()))
  t.equal(header.typ, 'at+jwt', 'RFC 9068 type')
  t.equal(payload.aud, 'fastify-wecom-auth', 'the default audience')
  t.equal(Math.floor(payload.iat_ms / 1000), payload.iat, 'a millisecond issue time beside iat')
  t.equal((await me(h.app, `Bearer ${login.access_token}`)).statusCode, 200)
  t.equal((await me(h.app, `Bearer ${ours()(validClaims())}`)).statusCode, 200, 'the control token is accepted')

  const claims = validClaims()
  const bad: Record<string, string> = {
    'typed JWT': ours({ header: { alg: 'HS256', typ: 'JWT' } })(claims),
    'typed at+jwt by nobody: no typ': ours({ header: { alg: 'HS256', typ: '' } })(claims),
    'no audience': ours()({ ...claims, aud: undefined }),
    'another audience': ours()({ ...claims, aud: 'the-host-app' }),
    'a corp not configured': ours()({ ...claims, corpid: 'wwforeign00000000' }),
    'an empty corpid': ours()({ ...claims, corpid: '' }),
    'an empty sid': ours()({ ...claims, sid: '' }),
    'an empty userid': ours()({ ...claims, userid: '' }),
    'a life longer than jwt.expiresIn': ours()({ ...claims, exp: claims.iat + 601 }),
    'a far exp': ours()({ ...claims, exp: claims.iat + 10 * 365 * 24 * 3600 }),
    'a millisecond issue time that is no number': ours()({ ...claims, iat_ms: String(claims.iat_ms) }),
    'a millisecond issue time of another second': ours()({ ...claims, iat_ms: claims.iat_ms - 5000 }),
    'a refresh token': login.refresh_token
  }
  for (const [name, token] of Object.entries(bad)) {
    const res = await me(h.app, `Bearer ${token}`)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'WECOM_TOKEN_INVALID', name)
  }
  t.equal((await me(h.app, `Bearer ${ours()({ ...claims, exp: claims.iat + 600 })}`)).statusCode, 200, 'a life of exactly jwt.expiresIn passes')
  t.equal((await me(h.app, `Bearer ${ours()({ ...claims, iat_ms: undefined })}`)).statusCode, 200, 'without iat_ms, iat serves')

  const asRefresh = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: login.access_token } })
  // Longer than any refresh token: refused by the body's schema (400) before any session lookup.
  t.ok(asRefresh.statusCode === 400 || asRefresh.statusCode === 401, `an access token is no refresh token (${asRefresh.statusCode})`)
  t.equal((await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: login.refresh_token } })).statusCode, 200)
})

t.test('a host sharing the key with its own @fastify/jwt tokens: they never pass the plugin\'s guard', async (t) => {
  const h = await setup(t, {}, {}, (app) => {
    app.register(fastifyJwt, { secret: JWT_SECRET, sign: { expiresIn: '10m' } })
    app.post('/host-login', async (_request, reply) => ({ token: await reply.jwtSign({ userid: 'boss', corpid: CORP_A, sid: 'abcdefghijklmnopqrstuv' }) }))
  })
  const hostToken = (await h.app.inject({ method: 'POST', url: '/host-login' })).json().token
  const res = await me(h.app, `Bearer ${hostToken}`)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'WECOM_TOKEN_INVALID')
})

t.test('an expired token: 401 WECOM_TOKEN_EXPIRED, also once it was cached as valid', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const expired = ours()({ ...validClaims(), iat: nowSeconds() - 1000, exp: nowSeconds() - 10 })
  const res = await me(app, `Bearer ${expired}`)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'WECOM_TOKEN_EXPIRED')
  t.equal(res.headers['www-authenticate'], INVALID)

  const shortLived = ours()({ ...validClaims(), exp: nowSeconds() + 1 })
  t.equal((await me(app, `Bearer ${shortLived}`)).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 2100))
  const later = await me(app, `Bearer ${shortLived}`)
  t.equal(later.statusCode, 401)
  t.equal(later.json().code, 'WECOM_TOKEN_EXPIRED')
})

t.test('issuer and audience, when configured, are put in and checked', async (t) => {
  const h = await setup(t, { jwt: { secret: JWT_SECRET, issuer: 'https://api.example.com', audience: 'staff-app' } })
  const login = await h.login('zhangsan')
  const [, payload] = login.json().access_token.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  t.equal(claims.iss, 'https://api.example.com')
  t.equal(claims.aud, 'staff-app')
  t.equal((await me(h.app, `Bearer ${login.json().access_token}`)).statusCode, 200)
  const withoutIss = ours()({ ...validClaims(), aud: 'staff-app' })
  const otherAud = ours()({ ...validClaims(), iss: 'https://api.example.com', aud: 'other' })
  t.equal((await me(h.app, `Bearer ${withoutIss}`)).json().code, 'WECOM_TOKEN_INVALID')
  t.equal((await me(h.app, `Bearer ${otherAud}`)).json().code, 'WECOM_TOKEN_INVALID')
})

t.test('ES256 and RS256 key pairs sign and verify; the public key cannot be used as an HMAC secret', async (t) => {
  for (const type of ['ec', 'rsa'] as const) {
    const pair = type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
    const privatePem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
    const publicPem = pair.publicKey.export({ format: 'pem', type: 'spki' }) as string
    const h = await setup(t, { jwt: { private: privatePem, public: publicPem } })
    const token = (await h.login('zhangsan')).json().access_token as string
    t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, type === 'ec' ? 'ES256' : 'RS256')
    t.equal((await me(h.app, `Bearer ${token}`)).statusCode, 200, type)
    const confused = ours({ key: publicPem })(validClaims())
    t.equal((await me(h.app, `Bearer ${confused}`)).json().code, 'WECOM_TOKEN_INVALID', `${type}: algorithm confusion refused`)
  }
})

t.test('request.wecomUser is null on routes without authenticate, and per request', async (t) => {
  const h = await setup(t, {}, {}, (app) => {
    app.get('/open', async (request) => ({ user: request.wecomUser }))
    app.get('/edit', { onRequest: app.wecom.authenticate }, async (request) => {
      request.wecomUser!.userid = 'edited'
      return request.wecomUser
    })
  })
  const token = (await h.login('zhangsan')).json().access_token
  const open = await h.app.inject({ url: '/open', headers: { authorization: `Bearer ${token}` } })
  t.same(open.json(), { user: null })
  t.equal((await h.app.inject({ url: '/edit', headers: { authorization: `Bearer ${token}` } })).json().userid, 'edited')
  t.same((await me(h.app, `Bearer ${token}`)).json(), { userid: 'zhangsan', corpid: CORP_A }, 'an edit does not leak into the next request')
})

t.test('coexistence with the host\'s own @fastify/jwt: both work, neither accepts the other\'s tokens', async (t) => {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  const app = Fastify()
  t.teardown(() => app.close())
  const HOST_SECRET = 'the-host-app-own-jwt-secret-0123456789abcdef'
  await app.register(fastifyJwt, { secret: HOST_SECRET })
  await app.register(fastifyWecomAuth, {
    corps: [{ corpId: CORP_A, secret: SECRET_A }],
    jwt: { secret: JWT_SECRET },
    api: { baseUrl: sim.url }
  })
  app.get('/host', { onRequest: async (request) => { await request.jwtVerify() } }, async (request) => ({ user: request.user }))
  app.get('/wecom-only', { onRequest: app.wecom.authenticate }, async (request) => ({ user: request.wecomUser }))
  app.post('/host-login', async (_request, reply) => ({ token: await reply.jwtSign({ admin: true }) }))

  const hostToken = (await app.inject({ method: 'POST', url: '/host-login' })).json().token
  const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
  const wecomToken = login.json().access_token

  const hostOwn = await app.inject({ url: '/host', headers: { authorization: `Bearer ${hostToken}` } })
  t.equal(hostOwn.statusCode, 200)
  t.equal(hostOwn.json().user.admin, true, 'the host keeps request.user')
  const wecomOwn = await app.inject({ url: '/wecom-only', headers: { authorization: `Bearer ${wecomToken}` } })
  t.equal(wecomOwn.statusCode, 200)
  t.same(wecomOwn.json().user, { userid: 'zhangsan', corpid: CORP_A })

  t.equal((await app.inject({ url: '/host', headers: { authorization: `Bearer ${wecomToken}` } })).statusCode, 401)
  const crossed = await app.inject({ url: '/wecom-only', headers: { authorization: `Bearer ${hostToken}` } })
  t.equal(crossed.statusCode, 401)
  t.equal(crossed.json().code, 'WECOM_TOKEN_INVALID')
})

t.test('@fastify/jwt registered after the plugin still works', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, { corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET } })
  await app.register(fastifyJwt, { secret: 'the-host-app-own-jwt-secret-0123456789abcdef' })
  await app.ready()
  t.type(app.jwt.sign, 'function')
  t.equal(app.hasRequestDecorator('user'), true)
})

t.test('the host\'s JSON-schema routes keep the host\'s validator', async (t) => {
  const h = await setup(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, { corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET }, api: { baseUrl: h.sim.url } })
  app.post('/items', {
    schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } }, additionalProperties: false } }
  }, async (request) => request.body)
  t.same((await app.inject({ method: 'POST', url: '/items', payload: { n: '5' } })).json(), { n: 5 }, 'ajv coercion still applies')
  const bad = await app.inject({ method: 'POST', url: '/items', payload: { m: 1 } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /must have required property 'n'/)
})

t.test('a protected route answers before its handler runs', async (t) => {
  let ran = 0
  const h = await setup(t, {}, {}, (app) => {
    app.get('/counted', { onRequest: app.wecom.authenticate }, async () => { ran++; return {} })
  })
  const res = await h.app.inject({ url: '/counted' })
  t.equal(res.statusCode, 401)
  t.equal(ran, 0)
})

t.test('a token\'s own __proto__ claim (JSON.parse makes one) is no claim of the request, and sets no prototype', async (t) => {
  const { app } = await buildApp({}, undefined, (app) => {
    app.get('/api/claims', { onRequest: app.wecom.authenticate }, async (request) => ({
      role: request.wecomClaims?.role ?? null,
      isAdmin: (request.wecomClaims as { isAdmin?: unknown } | null)?.isAdmin ?? null,
      own: Object.keys(request.wecomClaims ?? {})
    }))
  })
  t.teardown(() => app.close())
  const token = ours()(JSON.parse(`{"role":"user","__proto__":{"isAdmin":true},${JSON.stringify(validClaims()).slice(1)}`))
  t.same((await app.inject({ url: '/api/claims', headers: { authorization: `Bearer ${token}` } })).json(), { role: 'user', isAdmin: null, own: ['role'] })
})
