import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyWecomAuth from '../../src/index.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, JWT_SECRET, SECRET_A, simulatorCorps } from '../helpers/setup.js'

// @fastify/jwt is the engine, registered in an encapsulated child under the namespace `wecom`:
// nothing of the host's is claimed, whichever is registered first (guard.ts has both orders
// at work; this says what each order leaves on the host).

const options = { corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET } }

t.test('without @fastify/jwt of the host\'s: no app.jwt, no request.user, no jwtVerify', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWecomAuth, options)
  await app.ready()
  t.equal((app as unknown as { jwt?: unknown }).jwt, undefined)
  t.equal(app.hasRequestDecorator('user'), false)
  t.equal(app.hasRequestDecorator('jwtVerify'), false)
  t.equal(app.hasReplyDecorator('jwtSign'), false)
})

t.test('beside the host\'s @fastify/jwt registered first: at most a `wecom` entry in its app.jwt', async (t) => {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: 'the-host-app-own-jwt-secret-0123456789abcdef' })
  const before = Object.keys(app.jwt)
  await app.register(fastifyWecomAuth, { ...options, api: { baseUrl: sim.url } })
  await app.ready()
  t.same(Object.keys(app.jwt).filter((key) => !before.includes(key)), ['wecom'])
  const token = app.jwt.sign({ admin: true })
  t.same(app.jwt.verify<{ admin: boolean }>(token).admin, true, 'the host\'s own key still signs and verifies')
  const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
  const header = JSON.parse(Buffer.from(String(login.json().access_token).split('.')[0]!, 'base64url').toString('utf8'))
  t.same(header, { alg: 'HS256', typ: 'at+jwt' }, 'the algorithm pinned, the type as before')
})
