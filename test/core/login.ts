import t from 'tap'
import { createVerifier } from 'fast-jwt'
import { CORP_A, CORP_B, CORP_FOREIGN, JWT_SECRET, setup } from '../helpers/setup.js'

t.test('a member inside the visible range gets a JWT carrying userid and corpid', async (t) => {
  const h = await setup(t)
  const res = await h.login('zhangsan')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 900)
  t.same(body.user, { userid: 'zhangsan', corpid: CORP_A, name: '张三', department: [1, 2], position: 'engineer' })
  t.notOk('session_key' in body, 'the session_key never leaves the server')
  t.notOk(res.body.includes(h.sim.sessionKey(CORP_A, 'zhangsan')!), 'nor does its value')

  const claims = createVerifier({ key: JWT_SECRET, algorithms: ['HS256'] })(body.access_token)
  t.equal(claims.userid, 'zhangsan')
  t.equal(claims.corpid, CORP_A)
  t.equal(claims.exp - claims.iat, 900)
  t.type(claims.sid, 'string')

  const me = await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${body.access_token}` } })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { userid: 'zhangsan', corpid: CORP_A })
  t.same(h.sim.calls, { gettoken: 1, jscode2session: 1, 'user/get': 1 })
})

t.test('the access token is cached: a second login makes no gettoken call', async (t) => {
  const h = await setup(t)
  t.equal((await h.login('zhangsan')).statusCode, 200)
  t.equal((await h.login('zhangsan')).statusCode, 200)
  t.same(h.sim.calls, { gettoken: 1, jscode2session: 2, 'user/get': 2 })
})

t.test('a member outside the visible range (60011) is refused with 403', async (t) => {
  const h = await setup(t)
  const res = await h.login('lisi')
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'WECOM_USER_FORBIDDEN')
  t.notOk('access_token' in res.json())
})

t.test('a member removed from the corp (60111) is refused with 403', async (t) => {
  const h = await setup(t)
  const code = h.sim.issueCode(CORP_A, 'zhangsan')
  h.sim.removeMember(CORP_A, 'zhangsan')
  const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'WECOM_USER_FORBIDDEN')
})

for (const [errcode, name] of [[60021, 'visible range'], [92000, 'visible range (92000)']] as const) {
  t.test(`user/get errcode ${errcode} (${name}) is refused with 403`, async (t) => {
    const h = await setup(t)
    h.sim.inject('user/get', { errcode })
    const res = await h.login('zhangsan')
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'WECOM_USER_FORBIDDEN')
  })
}

t.test('a disabled member (status 2) is refused with 403', async (t) => {
  const h = await setup(t)
  const res = await h.login('wangwu')
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'WECOM_USER_FORBIDDEN')
})

t.test('a member who left (status 5) or is not activated (4) is refused', async (t) => {
  const h = await setup(t)
  for (const status of [4, 5]) {
    h.sim.updateMember(CORP_A, 'zhangsan', { status })
    const res = await h.login('zhangsan')
    t.equal(res.statusCode, 403, `status ${status}`)
  }
})

t.test('authorize returning false refuses the login; it sees the member and the request', async (t) => {
  const seen: Array<{ userid: string, hasRequest: boolean }> = []
  const h = await setup(t, {
    authorize: async (user, request) => {
      seen.push({ userid: user.userid, hasRequest: request !== undefined })
      return user.department?.includes(2) === true
    }
  })
  h.sim.setMember(CORP_A, { userid: 'intern', department: [7] })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  const refused = await h.login('intern')
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'WECOM_USER_FORBIDDEN')
  t.same(seen, [{ userid: 'zhangsan', hasRequest: true }, { userid: 'intern', hasRequest: true }])
})

t.test('a corp the server does not serve is refused with 403, and user/get is never called', async (t) => {
  const h = await setup(t)
  const res = await h.login('outsider', CORP_FOREIGN)
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'WECOM_CORP_NOT_ALLOWED')
  t.equal(h.sim.calls['user/get'], 0)
})

t.test('several corps: a code of the other corp gives 409 with its corpId, and the retry with it succeeds', async (t) => {
  const h = await setup(t)
  const first = await h.login('zhaoliu', CORP_B)
  t.equal(first.statusCode, 409)
  t.equal(first.json().code, 'WECOM_CORP_MISMATCH')
  t.equal(first.json().corpId, CORP_B)
  t.equal(h.sim.calls['user/get'], 0, 'never user/get across corps')

  const retry = await h.login('zhaoliu', CORP_B, { corpId: CORP_B })
  t.equal(retry.statusCode, 200)
  t.equal(retry.json().user.corpid, CORP_B)
  t.equal(h.sim.calls.gettoken, 2, 'one token per corp')
})

t.test('the first code of a mismatch is spent', async (t) => {
  const h = await setup(t)
  const code = h.sim.issueCode(CORP_B, 'zhaoliu')
  const first = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(first.statusCode, 409)
  const again = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code, corpId: CORP_B } })
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'WECOM_INVALID_CODE')
})

t.test('an unconfigured corpId in the body is a 400', async (t) => {
  const h = await setup(t)
  const res = await h.login('outsider', CORP_FOREIGN, { corpId: CORP_FOREIGN })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'WECOM_CORP_UNKNOWN')
  t.equal(h.sim.calls.gettoken, 0)
})

t.test('an invalid code and a reused code are 401 WECOM_INVALID_CODE', async (t) => {
  const h = await setup(t)
  const invalid = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'made-up-code' } })
  t.equal(invalid.statusCode, 401)
  t.equal(invalid.json().code, 'WECOM_INVALID_CODE')

  const code = h.sim.issueCode(CORP_A, 'zhangsan')
  t.equal((await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })).statusCode, 200)
  const reused = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'WECOM_INVALID_CODE')
})

t.test('an expired code (older than 5 minutes) is 401', async (t) => {
  const h = await setup(t)
  const code = h.sim.issueCode(CORP_A, 'zhangsan')
  h.sim.advance(301_000)
  const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'WECOM_INVALID_CODE')
})

t.test('41008 and 42013 from jscode2session are 401 WECOM_INVALID_CODE', async (t) => {
  const h = await setup(t)
  for (const errcode of [41008, 42013]) {
    h.sim.inject('jscode2session', { errcode })
    const res = await h.login('zhangsan')
    t.equal(res.statusCode, 401, `errcode ${errcode}`)
    t.equal(res.json().code, 'WECOM_INVALID_CODE')
  }
})

t.test('the body is validated: missing, empty, too long or wrongly typed codes are 400', async (t) => {
  const h = await setup(t)
  const bodies = [{}, { code: '' }, { code: 'x'.repeat(513) }, { code: 42 }, { code: 'ok', corpId: 7 }]
  for (const payload of bodies) {
    const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
  t.equal(h.sim.calls.jscode2session, 0)
  t.equal((await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x'.repeat(512) } })).statusCode, 401,
    'a 512-character code is accepted and goes to WeCom')
})

t.test('a code carrying query syntax reaches WeCom as one value', async (t) => {
  const h = await setup(t)
  const code = 'a&userid=zhangsan&access_token=x#frag'
  const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(res.statusCode, 401)
  const exchange = h.sim.requests.find((r) => r.endpoint === 'jscode2session')!
  t.equal(exchange.query.js_code, code)
  t.not(exchange.query.access_token, 'x')
  t.notOk('userid' in exchange.query)
  t.equal(h.sim.calls['user/get'], 0)
})

t.test('app.wecom.login runs the same flow without the route', async (t) => {
  const h = await setup(t)
  const issued = await h.app.wecom.login(h.sim.issueCode(CORP_B, 'zhaoliu'), { corpId: CORP_B })
  t.equal(issued.user.userid, 'zhaoliu')
  t.type(issued.access_token, 'string')
  await t.rejects(h.app.wecom.login(h.sim.issueCode(CORP_A, 'lisi')), { code: 'WECOM_USER_FORBIDDEN', statusCode: 403 })
  await t.rejects(h.app.wecom.login(h.sim.issueCode(CORP_B, 'zhaoliu')), { code: 'WECOM_CORP_MISMATCH', corpId: CORP_B })
})

t.test('the prefix option moves the routes', async (t) => {
  const h = await setup(t, { prefix: '/auth/wecom' })
  const res = await h.app.inject({ method: 'POST', url: '/auth/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan') } })
  t.equal(res.statusCode, 200)
  t.equal((await h.login('zhangsan')).statusCode, 404)
})
