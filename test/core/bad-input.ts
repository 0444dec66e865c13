import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CORP_A, JWT_SECRET, setup } from '../helpers/setup.js'

const APPID = 'wx1234567890abcdef'

const refresh = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: token } })
const me = (app: FastifyInstance, token: string) =>
  app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
const logout = (app: FastifyInstance, payload: object) => app.inject({ method: 'POST', url: '/wecom/logout', payload })

t.test('decrypt, used as the README shows it, answers 400 WECOM_DECRYPT_FAILED for every shape of body', async (t) => {
  let given: unknown
  const h = await setup(t, { miniprogramAppId: APPID }, {}, (app) => {
    app.post('/api/profile/mobile', { onRequest: app.wecom.authenticate }, async (request) => {
      const { mobile } = await app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string })
      return { mobile }
    })
    // The same decorator given values no JSON body can hold.
    app.get('/api/decrypt-given', { onRequest: app.wecom.authenticate }, async (request) => app.wecom.decrypt(request, given))
  })
  const { access_token: token } = (await h.login('zhangsan')).json()
  const good = h.sim.encryptUserInfo(CORP_A, 'zhangsan', { mobile: '13800000000' }, APPID)
  const post = (payload: string, contentType = 'application/json') => h.app.inject({
    method: 'POST', url: '/api/profile/mobile', payload, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }
  })
  t.equal((await post(JSON.stringify(good))).statusCode, 200, 'the control body decrypts')

  const bodies: Record<string, string> = {
    '{}': '{}',
    'only encryptedData': '{"encryptedData":"AAAA"}',
    'iv a number': '{"encryptedData":"AAAA","iv":1}',
    'an array': '[1]',
    null: 'null',
    'a number': '42',
    'a string': '"text"',
    'fields of the wrong type': '{"encryptedData":["AAAA"],"iv":{"a":1}}',
    'empty fields': '{"encryptedData":"","iv":""}',
    'not base64': JSON.stringify({ ...good, encryptedData: '!!!not base64!!!' }),
    base64url: JSON.stringify({ ...good, encryptedData: good.encryptedData.replace(/\+/g, '-').replace(/\//g, '_') + '-_' }),
    'an iv of 15 bytes': JSON.stringify({ ...good, iv: Buffer.alloc(15).toString('base64') }),
    'a huge blob': JSON.stringify({ ...good, encryptedData: 'A'.repeat(600_000) }),
    'not a multiple of the block': JSON.stringify({ ...good, encryptedData: 'AAAA' }),
    'another key': JSON.stringify({ ...good, encryptedData: Buffer.alloc(32, 1).toString('base64') })
  }
  for (const [name, body] of Object.entries(bodies)) {
    const res = await post(body)
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'WECOM_DECRYPT_FAILED', name)
  }
  const noBody = await h.app.inject({ method: 'POST', url: '/api/profile/mobile', headers: { authorization: `Bearer ${token}` } })
  t.equal(noBody.json().code, 'WECOM_DECRYPT_FAILED', 'no body')

  for (const value of [undefined, null, 0, 1n, Symbol('x'), () => {}, new Map(), 'A'.repeat(1_000_000), { encryptedData: 1n, iv: null }]) {
    given = value
    const res = await h.app.inject({ url: '/api/decrypt-given', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.json().code, 'WECOM_DECRYPT_FAILED', typeof value)
  }
  const withoutRequest = h.app.wecom.decrypt(undefined as unknown as FastifyRequest, good)
  await t.rejects(withoutRequest, { statusCode: 401, code: 'WECOM_TOKEN_MISSING' }, 'no verified request: a typed 401')
})

t.test('logout with a bearer token, Content-Type: application/json and an empty body: 204, the session ended', async (t) => {
  const h = await setup(t)
  const login = (await h.login('zhangsan')).json()
  const out = await h.app.inject({
    method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${login.access_token}`, 'content-type': 'application/json' }
  })
  t.equal(out.statusCode, 204)
  t.equal((await me(h.app, login.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await refresh(h.app, login.refresh_token)).statusCode, 401)

  const second = (await h.login('zhangsan')).json()
  const charset = await h.app.inject({
    method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${second.access_token}`, 'content-type': 'application/json; charset=utf-8' }, payload: ''
  })
  t.equal(charset.statusCode, 204, 'with a charset too')
  const malformed = await h.app.inject({
    method: 'POST', url: '/wecom/logout', headers: { 'content-type': 'application/json' }, payload: '{"refresh_token":'
  })
  t.equal(malformed.statusCode, 400, 'a body that is there and broken is still a 400')
  const poisoned = await h.app.inject({
    method: 'POST', url: '/wecom/logout', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}'
  })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is refused as by Fastify\'s own parser')
  const login2 = (await h.app.inject({ method: 'POST', url: '/wecom/login', headers: { 'content-type': 'application/json' }, payload: '' }))
  t.equal(login2.statusCode, 400, 'an empty body is still refused on /login')
})

t.test('logout with an unknown, expired or already-used refresh token: 204, revealing nothing', async (t) => {
  const h = await setup(t, { jwt: { secret: JWT_SECRET, expiresIn: 1 }, session: { refreshTtl: 1, reuseGrace: 0 } })
  const login = (await h.login('zhangsan')).json()
  const renewed = (await refresh(h.app, login.refresh_token)).json()
  const [sid] = login.refresh_token.split('.')
  const answers = [
    await logout(h.app, { refresh_token: 'unknown' }),
    await logout(h.app, { refresh_token: `${sid}.5.${'A'.repeat(64)}` }),
    await logout(h.app, { refresh_token: login.refresh_token })
  ]
  t.equal((await refresh(h.app, renewed.refresh_token)).statusCode, 401, 'the already-used token ended its session, as its holder asked')
  const other = (await h.login('zhangsan')).json()
  await sleep(1500)
  answers.push(await logout(h.app, { refresh_token: other.refresh_token }))
  answers.push(await logout(h.app, { refresh_token: other.refresh_token }))
  for (const res of answers) {
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
  }
})

t.test('every decorator refuses a value of the wrong type, missing, empty or huge with a typed 4xx, never a TypeError', async (t) => {
  const h = await setup(t)
  const { app, sim } = h
  const odd: unknown[] = [undefined, null, 123, '', 'x'.repeat(100_000), {}, [], true, Symbol('s'), 1n]
  const calls = () => sim.calls.gettoken + sim.calls.jscode2session + sim.calls['user/get']
  const before = calls()
  for (const value of odd) {
    const name = typeof value === 'string' ? `string of ${value.length}` : String(typeof value)
    await t.rejects(app.wecom.revokeSession(value as string), { statusCode: 400, code: 'WECOM_INVALID_ARGUMENT', message: /^sid must be/ }, `revokeSession(${name})`)
    await t.rejects(app.wecom.revokeUser(value as string, 'zhangsan'), { statusCode: 400, code: 'WECOM_INVALID_ARGUMENT', message: /^corpId must be/ }, `revokeUser(${name}, …)`)
    await t.rejects(app.wecom.revokeUser(CORP_A, value as string), { statusCode: 400, code: 'WECOM_INVALID_ARGUMENT', message: /^userid must be/ }, `revokeUser(…, ${name})`)
    await t.rejects(app.wecom.login(value as string), { statusCode: 401, code: 'WECOM_INVALID_CODE' }, `login(${name})`)
    if (value !== undefined && value !== null) {
      await t.rejects(app.wecom.login('a-code', { corpId: value as string }), { statusCode: 400, code: 'WECOM_INVALID_ARGUMENT' }, `login(code, { corpId: ${name} })`)
    }
  }
  t.equal(calls(), before, 'no WeCom call for any of them')
  await t.rejects(app.wecom.login('x'.repeat(513)), { code: 'WECOM_INVALID_CODE' }, 'a code longer than /login allows')
  await t.rejects(app.wecom.login('码'.repeat(10)), { code: 'WECOM_INVALID_CODE' }, 'a code of another encoding than /login allows')
  await t.rejects(app.wecom.login('a code'), { code: 'WECOM_INVALID_CODE' }, 'a code with a space')
  t.equal(calls(), before, 'still no WeCom call')
  const other = await app.wecom.login(sim.issueCode(CORP_A, 'zhangsan'), { corpId: CORP_A })
  await app.wecom.revokeSession('an-unknown-session-id')
  t.equal((await me(app, other.access_token)).statusCode, 200, 'an unknown sid is a no-op')
  await app.wecom.revokeUser('wwnotconfigured', 'nobody')
  t.equal((await me(app, other.access_token)).statusCode, 200, 'an unknown member is a no-op')
})

t.test('logout with a refresh token of any shape answers 204 (RFC 7009), an empty one and a long one included', async (t) => {
  const h = await setup(t)
  for (const token of ['', 'x'.repeat(300), '好'.repeat(300), '..', 'a.b.c']) {
    const res = await h.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: token } })
    t.equal(res.statusCode, 204, JSON.stringify(token.slice(0, 10)))
  }
})
