import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { encryptWithSessionKey } from '../../src/testing/simulator.js'
import { CORP_A, CORP_B, JWT_SECRET, setup } from '../helpers/setup.js'

const refresh = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: token } })
const me = (app: FastifyInstance, token: string) =>
  app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a login returns a refresh token; refresh rotates it and issues a new access token', async (t) => {
  const h = await setup(t)
  const login = (await h.login('zhangsan')).json()
  t.equal(login.refresh_expires_in, 30 * 24 * 3600)
  t.match(login.refresh_token, /^[\w-]+\.0\.[\w-]{64}$/, 'the session id, generation 0, 256 random bits and a 128-bit tag')

  const res = await refresh(h.app, login.refresh_token)
  t.equal(res.statusCode, 200)
  const renewed = res.json()
  t.not(renewed.refresh_token, login.refresh_token)
  t.match(renewed.refresh_token, /^[\w-]+\.1\.[\w-]{64}$/, 'generation 1')
  t.not(renewed.access_token, login.access_token)
  t.same(renewed.user, login.user)
  t.equal(renewed.token_type, 'Bearer')
  t.equal((await me(h.app, renewed.access_token)).statusCode, 200)
  t.equal(h.sim.calls['user/get'], 1, 'no recheck inside the recheck interval')
})

t.test('reusing a rotated refresh token outside the grace revokes the whole session', async (t) => {
  const h = await setup(t, { session: { reuseGrace: 0 } })
  const login = (await h.login('zhangsan')).json()
  const renewed = (await refresh(h.app, login.refresh_token)).json()

  const replay = await refresh(h.app, login.refresh_token)
  t.equal(replay.statusCode, 401)
  t.equal(replay.json().code, 'WECOM_REFRESH_INVALID')

  const thiefOrOwner = await refresh(h.app, renewed.refresh_token)
  t.equal(thiefOrOwner.statusCode, 401, 'the newest refresh token died with the session')
  t.equal(thiefOrOwner.json().code, 'WECOM_REFRESH_INVALID')
  const access = await me(h.app, renewed.access_token)
  t.equal(access.statusCode, 401)
  t.equal(access.json().code, 'WECOM_TOKEN_REVOKED')
  t.equal(access.headers['www-authenticate'], 'Bearer realm="wecom", error="invalid_token"')
})

t.test('without a grace, two refreshes racing with one token: one wins, the reuse ends the session', async (t) => {
  const h = await setup(t, { session: { reuseGrace: 0 } })
  const login = (await h.login('zhangsan')).json()
  const [a, b] = await Promise.all([refresh(h.app, login.refresh_token), refresh(h.app, login.refresh_token)])
  t.same([a.statusCode, b.statusCode].sort(), [200, 401])
  const winner = a.statusCode === 200 ? a.json() : b.json()
  t.equal((await me(h.app, winner.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'the session ended')
})

t.test('unknown, malformed and forged refresh tokens are 401 WECOM_REFRESH_INVALID', async (t) => {
  const h = await setup(t)
  const login = (await h.login('zhangsan')).json()
  const [sid] = login.refresh_token.split('.')
  const renewed = (await refresh(h.app, login.refresh_token)).json()
  const forged = [
    'nope', `${sid}.${'A'.repeat(43)}`, `${'x'.repeat(22)}.0.${'A'.repeat(64)}`,
    // Shaped like a token of this session, of the current or an older generation: not ours.
    `${sid}.1.${'A'.repeat(64)}`, `${sid}.0.${'A'.repeat(64)}`, `${sid}.2.${'A'.repeat(64)}`
  ]
  for (const token of forged) {
    const res = await refresh(h.app, token)
    t.equal(res.statusCode, 401, token)
    t.equal(res.json().code, 'WECOM_REFRESH_INVALID')
  }
  t.equal((await refresh(h.app, renewed.refresh_token)).statusCode, 200, 'a forged token with a known sid does not end the session')
  t.equal((await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: {} })).statusCode, 400)
})

t.test('an expired refresh token is refused', async (t) => {
  const h = await setup(t, { jwt: { secret: JWT_SECRET, expiresIn: 1 }, session: { refreshTtl: 1, reuseGrace: 0 } })
  const login = (await h.login('zhangsan')).json()
  t.equal(login.refresh_expires_in, 1)
  await sleep(1100)
  t.equal((await refresh(h.app, login.refresh_token)).json().code, 'WECOM_REFRESH_INVALID')
})

t.test('logout with the bearer token ends the session: 204', async (t) => {
  const h = await setup(t)
  const login = (await h.login('zhangsan')).json()
  const out = await h.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${login.access_token}` } })
  t.equal(out.statusCode, 204)
  t.equal(out.body, '')
  t.equal((await me(h.app, login.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await refresh(h.app, login.refresh_token)).json().code, 'WECOM_REFRESH_INVALID')
  const again = await h.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${login.access_token}` } })
  t.equal(again.statusCode, 401)
})

t.test('logout with the refresh token ends the session: 204', async (t) => {
  const h = await setup(t)
  const login = (await h.login('zhangsan')).json()
  const out = await h.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: login.refresh_token } })
  t.equal(out.statusCode, 204)
  t.equal((await me(h.app, login.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await refresh(h.app, login.refresh_token)).statusCode, 401)
  const unauthenticated = await h.app.inject({ method: 'POST', url: '/wecom/logout', payload: {} })
  t.equal(unauthenticated.statusCode, 401)
  t.equal(unauthenticated.json().code, 'WECOM_TOKEN_MISSING')
})

t.test('revokeSession and revokeUser end sessions; other members keep theirs', async (t) => {
  const h = await setup(t)
  const first = (await h.login('zhangsan')).json()
  const second = (await h.login('zhangsan')).json()
  const third = (await h.login('zhangsan')).json()
  const other = (await h.login('zhaoliu', CORP_B, { corpId: CORP_B })).json()

  const sid = JSON.parse(Buffer.from(first.access_token.split('.')[1], 'base64url').toString()).sid
  await h.app.wecom.revokeSession(sid)
  t.equal((await me(h.app, first.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await me(h.app, second.access_token)).statusCode, 200)

  await h.app.wecom.revokeUser(CORP_A, 'zhangsan')
  for (const session of [second, third]) {
    t.equal((await me(h.app, session.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
    t.equal((await refresh(h.app, session.refresh_token)).statusCode, 401)
  }
  t.equal((await me(h.app, other.access_token)).statusCode, 200)
  t.equal((await refresh(h.app, other.refresh_token)).statusCode, 200)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'the member may log in again')
})

t.test('refresh rechecks the member after the recheck interval', async (t) => {
  const h = await setup(t, { session: { recheckInterval: 1 } })
  const login = (await h.login('zhangsan')).json()
  await sleep(1100)
  h.sim.updateMember(CORP_A, 'zhangsan', { name: '张三丰' })
  const renewed = await refresh(h.app, login.refresh_token)
  t.equal(renewed.statusCode, 200)
  t.equal(renewed.json().user.name, '张三丰', 'the recheck refreshes the member')
  t.equal(h.sim.calls['user/get'], 2)

  await sleep(1100)
  h.sim.updateMember(CORP_A, 'zhangsan', { visible: false })
  const removed = await refresh(h.app, renewed.json().refresh_token)
  t.equal(removed.statusCode, 403)
  t.equal(removed.json().code, 'WECOM_USER_FORBIDDEN')
  t.equal((await me(h.app, renewed.json().access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'the session is revoked')
})

t.test('a recheck refused by authorize or a disabled status ends the session', async (t) => {
  let allowed = true
  const h = await setup(t, { session: { recheckInterval: 1 }, authorize: () => allowed })
  const a = (await h.login('zhangsan')).json()
  h.sim.setMember(CORP_A, { userid: 'temp', name: 'Temp' })
  const b = (await h.login('temp')).json()
  await sleep(1100)
  allowed = false
  t.equal((await refresh(h.app, a.refresh_token)).statusCode, 403)
  allowed = true
  h.sim.updateMember(CORP_A, 'temp', { status: 2 })
  t.equal((await refresh(h.app, b.refresh_token)).statusCode, 403)
  t.equal((await me(h.app, b.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
})

t.test('a recheck while WeCom is down answers 503 and keeps the session', async (t) => {
  const h = await setup(t, { session: { recheckInterval: 1 }, api: { refusals: { frequency: 200 } } })
  const login = (await h.login('zhangsan')).json()
  await sleep(1100)
  h.sim.inject('user/get', { errcode: 45009 })
  const down = await refresh(h.app, login.refresh_token)
  t.equal(down.statusCode, 503)
  t.ok(down.headers['retry-after'])
  await sleep(250) // the 45009 window
  t.equal((await refresh(h.app, login.refresh_token)).statusCode, 200, 'the same refresh token still works')
})

t.test('decrypt: data made with the member\'s session_key and iv decrypts; the watermark is checked', async (t) => {
  const APPID = 'wx1234567890abcdef'
  let decrypted: unknown
  const h = await setup(t, { miniprogramAppId: APPID }, {}, (app) => {
    app.post('/api/mobile', { onRequest: app.wecom.authenticate }, async (request) => {
      decrypted = await app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string })
      return { ok: true }
    })
    app.post('/api/unprotected', async (request) => app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string }))
  })
  const first = (await h.login('zhangsan')).json()
  const second = (await h.login('zhangsan')).json()
  const sessionKey = h.sim.sessionKey(CORP_A, 'zhangsan')!
  const iv = Buffer.from('0123456789abcdef')
  const payload = encryptWithSessionKey(sessionKey, { mobile: '13800000000', countryCode: '86' }, APPID, iv)
  t.equal(payload.iv, iv.toString('base64'))

  const post = (token: string, body: unknown) => h.app.inject({
    method: 'POST', url: '/api/mobile', headers: { authorization: `Bearer ${token}` }, payload: body as object
  })
  t.equal((await post(second.access_token, payload)).statusCode, 200)
  t.match(decrypted, { mobile: '13800000000', countryCode: '86', watermark: { appid: APPID } })
  t.equal((await post(first.access_token, payload)).statusCode, 200, 'the newest key serves every session of the member')

  const otherApp = encryptWithSessionKey(sessionKey, { mobile: '1' }, 'wxotherapp', iv)
  const wrongAppid = await post(second.access_token, otherApp)
  t.equal(wrongAppid.statusCode, 400)
  t.equal(wrongAppid.json().code, 'WECOM_DECRYPT_FAILED')

  const stale = encryptWithSessionKey(Buffer.alloc(16, 7).toString('base64'), { mobile: '1' }, APPID, iv)
  t.equal((await post(second.access_token, stale)).json().code, 'WECOM_DECRYPT_FAILED', 'data from a replaced key fails')
  t.equal((await post(second.access_token, { ...payload, iv: 'short' })).statusCode, 400)
  t.equal((await h.app.inject({ method: 'POST', url: '/api/unprotected', payload })).statusCode, 401, 'decrypt needs authenticate')
})

t.test('the in-process store is bounded: past maxSessions the oldest session is dropped', async (t) => {
  const h = await setup(t, { session: { maxSessions: 3 } })
  const logins = []
  for (let i = 0; i < 4; i++) logins.push((await h.login('zhangsan')).json())
  t.equal((await refresh(h.app, logins[0].refresh_token)).statusCode, 401, 'the oldest is gone')
  for (const login of logins.slice(1)) t.equal((await refresh(h.app, login.refresh_token)).statusCode, 200)
})

t.test('a session_key sealed under an older JWT key fails to decrypt as 400, not 500', async (t) => {
  const { createVault } = await import('../../src/sessions/vault.js')
  const sealed = createVault('old-jwt-secret-that-was-rotated-away-0123').seal('c2Vzc2lvbmtleTEyMzQ1Ng==')
  t.equal(createVault('the-new-jwt-secret-after-rotation-0123456').open(sealed), null)
  t.equal(createVault('old-jwt-secret-that-was-rotated-away-0123').open(sealed), 'c2Vzc2lvbmtleTEyMzQ1Ng==')
  t.equal(createVault('old-jwt-secret-that-was-rotated-away-0123').open('dGFtcGVyZWQ='), null, 'damaged')
})
