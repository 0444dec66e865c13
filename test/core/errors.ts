import t from 'tap'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import fastifyWecomAuth, { type WecomAuthOptions } from '../../src/index.js'
import { createWecomSimulator, type WecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, CORP_B, JWT_SECRET, PATIENT_TIMEOUT, SECRET_A, SECRET_B, setup, simulatorCorps } from '../helpers/setup.js'

// A host with its own error handler gets one envelope from every error of the plugin's, on the
// plugin's routes and from authenticate on its own, with what the answer needs on the error.

interface Seen { statusCode?: number, code?: string, message: string, headers?: Record<string, string>, corpId?: string, validation: boolean }

interface TeardownTarget { teardown (fn: () => unknown): void }

async function hostApp (t: TeardownTarget, options: Partial<WecomAuthOptions> = {}, order: 'before' | 'after' = 'before'): Promise<{ app: FastifyInstance, sim: WecomSimulator, seen: Seen[] }> {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: Seen[] = []
  const handler = (error: FastifyError, _request: unknown, reply: FastifyReply) => {
    const { statusCode, code, message, headers, corpId } = error as FastifyError & { headers?: Record<string, string>, corpId?: string }
    seen.push({ statusCode, code, message, headers, corpId, validation: error.validation !== undefined })
    return reply.code(statusCode ?? 500).headers(headers ?? {}).send({ ok: false, error: { code, message } })
  }
  if (order === 'before') app.setErrorHandler(handler)
  app.register(fastifyWecomAuth, {
    corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_B, secret: SECRET_B }],
    jwt: { secret: JWT_SECRET },
    ...options,
    api: { timeout: PATIENT_TIMEOUT, ...options.api, baseUrl: sim.url }
  })
  // Registered without awaiting, as most hosts write it: the handler still covers the plugin's routes.
  if (order === 'after') app.setErrorHandler(handler)
  app.after(() => {
    app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => request.wecomUser)
  })
  await app.ready()
  return { app, sim, seen }
}

for (const order of ['before', 'after'] as const) {
  t.test(`a host's error handler (set ${order} registering) answers every error of the plugin's, with one envelope`, async (t) => {
    const { app, sim, seen } = await hostApp(t, { rateLimit: { max: 4 } }, order)

    const invalid = await app.inject({ method: 'POST', url: '/wecom/login', payload: {} })
    t.equal(invalid.statusCode, 400)
    t.same(invalid.json(), { ok: false, error: { code: 'FST_ERR_VALIDATION', message: 'body must have required property \'code\'' } })
    t.equal(seen.at(-1)?.validation, true)

    const mismatch = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_B, 'zhaoliu') } })
    t.equal(mismatch.statusCode, 409)
    t.match(mismatch.json().error, { code: 'WECOM_CORP_MISMATCH' })
    t.equal(seen.at(-1)?.corpId, CORP_B, 'the 409 carries the corp on the error')

    const unknown = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x', corpId: 'wwunknown' } })
    t.equal(unknown.json().error.code, 'WECOM_CORP_UNKNOWN')

    const limited = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' } })
    t.equal(limited.statusCode, 401)
    const refused = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' } })
    t.equal(refused.statusCode, 429)
    t.equal(refused.json().error.code, 'WECOM_RATE_LIMITED')
    t.match(seen.at(-1)?.headers, { 'retry-after': /^\d+$/ }, 'Retry-After on the error')
    t.ok(refused.headers['retry-after'])

    const missing = await app.inject({ method: 'GET', url: '/api/me' })
    t.equal(missing.statusCode, 401)
    t.same(missing.json(), { ok: false, error: { code: 'WECOM_TOKEN_MISSING', message: 'Authorization: Bearer <token> is required' } })
    t.same(seen.at(-1)?.headers, { 'www-authenticate': 'Bearer realm="wecom"' })
    t.equal(missing.headers['www-authenticate'], 'Bearer realm="wecom"')

    const bad = await app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: 'Bearer nope' } })
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().error.code, 'WECOM_TOKEN_INVALID')
    t.same(seen.at(-1)?.headers, { 'www-authenticate': 'Bearer realm="wecom", error="invalid_token"' })

    t.equal(seen.length, 7, 'every error went through the host\'s handler')
  })
}

// @fastify/rate-limit decides the 429's headers (addHeaders, addHeadersOnExceeding): the error a
// handler gets carries its Retry-After only when the library sends one, so that either handler
// answers what the host asked for.
t.test('a 429\'s Retry-After is @fastify/rate-limit\'s: once, and none when the host turns it off', async (t) => {
  const twoLogins = async (app: FastifyInstance) => {
    const first = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' } })
    const second = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' } })
    t.equal(second.statusCode, 429)
    return { first, second }
  }
  for (const handler of ['Fastify\'s', 'the host\'s']) {
    const host = handler === 'the host\'s'
    const start = async (rateLimit: WecomAuthOptions['rateLimit']) => host ? hostApp(t, { rateLimit }) : { ...await setup(t, { rateLimit }), seen: [] }

    const off = await start({ max: 1, addHeaders: { 'retry-after': false }, addHeadersOnExceeding: { 'x-ratelimit-remaining': false } })
    const { first, second } = await twoLogins(off.app)
    t.equal(second.headers['retry-after'], undefined, `${handler} handler: no Retry-After`)
    t.equal(second.headers['x-ratelimit-limit'], '1', `${handler} handler: the headers not turned off stay`)
    t.equal(first.headers['x-ratelimit-remaining'], undefined, `${handler} handler: addHeadersOnExceeding is the library's`)
    if (host) t.notMatch(off.seen.at(-1)?.headers ?? {}, { 'retry-after': /./ }, 'none on the error either')

    // A window written as @fastify/rate-limit takes it: one minute.
    const on = await start({ max: 1, timeWindow: '1 minute' })
    const retryAfter = (await twoLogins(on.app)).second.headers['retry-after']
    t.match(retryAfter, /^\d+$/, `${handler} handler: one Retry-After`)
    // At most the window; far from 0 however slow the machine.
    t.ok(Number(retryAfter) > 30 && Number(retryAfter) <= 60, `${handler} handler: Retry-After ${String(retryAfter)} s of the minute`)
    if (host) t.equal(on.seen.at(-1)?.headers?.['retry-after'], retryAfter, 'the same on the error')
  }
})

t.test('a 503 reaches the host\'s handler with its Retry-After', async (t) => {
  const { app, sim, seen } = await hostApp(t)
  sim.inject('gettoken', { errcode: -1 }, 4)
  const res = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().error.code, 'WECOM_UNAVAILABLE')
  t.match(seen.at(-1)?.headers, { 'retry-after': /^\d+$/ })
  t.equal(res.headers['retry-after'], seen.at(-1)?.headers?.['retry-after'])
})

t.test('with Fastify\'s default handler the bodies are Fastify\'s, the 409 with its corpId', async (t) => {
  const h = await setup(t)
  const mismatch = await h.login('zhaoliu', CORP_B)
  t.same(mismatch.json(), {
    statusCode: 409,
    code: 'WECOM_CORP_MISMATCH',
    error: 'Conflict',
    message: `The code belongs to corp ${CORP_B}: call wx.qy.login again and retry with that corpId`,
    corpId: CORP_B
  })
  t.equal(mismatch.body.indexOf('"statusCode"'), 1, 'Fastify\'s order of fields')

  const invalid = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 42 } })
  t.same(invalid.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'body/code must be string' })

  const noBody = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: {} })
  t.equal(noBody.json().message, 'body must have required property \'refresh_token\'')

  const missing = await h.app.inject({ method: 'GET', url: '/api/me' })
  t.same(missing.json(), { statusCode: 401, code: 'WECOM_TOKEN_MISSING', error: 'Unauthorized', message: 'Authorization: Bearer <token> is required' })
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="wecom"')

  h.sim.inject('jscode2session', { errcode: -1 }, 4)
  const down = await h.login('zhangsan')
  t.equal(down.statusCode, 503)
  t.ok(Number(down.headers['retry-after']) >= 1)
})

t.test('a host using fastify-type-provider-zod on its root: the plugin validates with its own ajv', async (t) => {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  const app = Fastify()
  t.teardown(() => app.close())
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(fastifyWecomAuth, { corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET }, api: { baseUrl: sim.url } })
  app.withTypeProvider<ZodTypeProvider>().post('/echo', { schema: { body: z.object({ n: z.number() }) } }, async (request) => request.body)

  const invalid = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: '' } })
  t.same(invalid.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'body/code must NOT have fewer than 1 characters' })
  const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
  t.equal(login.statusCode, 200)
  t.same((await app.inject({ method: 'POST', url: '/echo', payload: { n: 1 } })).json(), { n: 1 }, 'the host\'s zod route still validates with zod')
  t.equal((await app.inject({ method: 'POST', url: '/echo', payload: { n: 'x' } })).statusCode, 400)
})
