import t, { type Test } from 'tap'
import { CORP_A, CORP_B, SECRET_A, setup, simulatorCorps, WEB_A, WEB_HOST } from '../helpers/setup.js'
import { OTHER, PROVIDER, SUITE, suiteOptions } from '../helpers/suites.js'
import type { WecomAuthOptions } from '../../src/index.js'

// A provider's corps on WeCom's worse days (issue 19, found in review): a cancel_auth resent after
// the corp installed again, a host hook failing at the uninstall, an uninstall during a login's
// member check; and ids a server does not serve.

async function provider (t: Test, options: Partial<WecomAuthOptions> = {}) {
  const h = await setup(t, { ...suiteOptions, corps: undefined, ...options }, { corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  for (const suite of [SUITE, OTHER]) await h.sim.pushSuiteTicket(suite.suiteId)
  const login = (corpId: string, userid: string, body: Record<string, unknown> = {}) =>
    h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(corpId, userid), suiteId: SUITE.suiteId, ...body } })
  const me = (token: string) => h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  return { ...h, login, me }
}

t.test('a cancel_auth dated before the corp\'s latest install (WeCom resending it late) leaves the new install alone', async (t) => {
  const p = await provider(t)
  const stamp = Math.floor(Date.now() / 1000)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const session = (await p.login(CORP_A, 'zhangsan')).json()
  const stale = await p.sim.pushSuite(SUITE.suiteId, { InfoType: 'cancel_auth', AuthCorpId: CORP_A, TimeStamp: stamp - 60 })
  t.same(stale, { status: 200, body: 'success' }, 'acknowledged')
  t.equal((await p.me(session.access_token)).statusCode, 200, 'the new install\'s session lives')
  t.same((await p.app.wecom.corps()).map(({ corpId }) => corpId), [CORP_A], 'still installed')
  t.ok(p.logs.records.some((r) => r.msg === 'wecom: a cancel_auth older than the corp\'s install; ignored'))
  t.same(await p.sim.pushSuite(SUITE.suiteId, { InfoType: 'cancel_auth', AuthCorpId: CORP_A, TimeStamp: stamp + 1 }), { status: 200, body: 'success' })
  t.equal((await p.me(session.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'a cancel dated after it ends it')
})

t.test('onCorpCancelled failing: the push is acknowledged, the corp stays uninstalled, the failure logged', async (t) => {
  const p = await provider(t, { hooks: { onCorpCancelled: async () => { throw new Error('the host\'s table is down') } } })
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const session = (await p.login(CORP_A, 'zhangsan')).json()
  const answer = await p.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId })
  t.same(answer, { status: 200, body: 'success' })
  t.same(await p.app.wecom.corps(), [], 'the install is erased')
  t.equal((await p.me(session.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await p.login(CORP_A, 'zhangsan')).json().code, 'WECOM_CORP_NOT_ALLOWED')
  const failure = p.logs.records.find((r) => /onCorpCancelled failed/.test(String(r.msg)))
  t.ok(failure, 'logged')
  t.notMatch(answer?.body ?? '', /table is down/, 'the host\'s message is not written back to WeCom')
})

t.test('the corp uninstalls during a login\'s member check: the login is refused', async (t) => {
  const meanwhile: { run?: () => Promise<unknown> } = {}
  const p = await provider(t, { authorize: async () => { await meanwhile.run?.(); return true } })
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  meanwhile.run = () => p.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId })
  const raced = await p.login(CORP_A, 'zhangsan')
  t.equal(raced.statusCode, 403)
  t.equal(raced.json().code, 'WECOM_CORP_NOT_ALLOWED', 'no token outlives the uninstall')
})

t.test('ids a server does not serve: a suiteId without suites, a third-party code of another corp than the one named', async (t) => {
  const plain = await setup(t)
  const unknown = await plain.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: plain.sim.issueCode(CORP_A, 'zhangsan'), suiteId: 'wwanything' } })
  t.equal(unknown.json().code, 'WECOM_SUITE_UNKNOWN', 'a server without suites')
  await t.rejects(plain.app.wecom.login(plain.sim.issueCode(CORP_A, 'zhangsan'), { suiteId: 'wwanything' }), { code: 'WECOM_SUITE_UNKNOWN' })

  const p = await provider(t)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const mismatch = await p.login(CORP_A, 'zhangsan', { corpId: CORP_B })
  t.equal(mismatch.statusCode, 409, 'the code is corp A\'s')
  t.equal(mismatch.json().corpId, CORP_A)
})

t.test('a suite\'s session signs no page of the corp\'s own web app (JS-SDK)', async (t) => {
  const h = await setup(t, { ...suiteOptions, corps: [{ corpId: CORP_A, secret: SECRET_A, web: WEB_A }], web: { origins: [`http://${WEB_HOST}`], cookie: { secure: false } } },
    { corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  await h.sim.pushSuiteTicket(SUITE.suiteId)
  await h.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const { access_token: suiteToken } = (await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan'), suiteId: SUITE.suiteId } })).json()
  const { access_token: ownToken } = (await h.login('zhangsan')).json()
  const sign = (token: string) => h.app.inject({ method: 'POST', url: '/wecom/jssdk/signature', headers: { authorization: `Bearer ${token}` }, payload: { url: `http://${WEB_HOST}/page` } })
  t.equal((await sign(ownToken)).statusCode, 200, 'the corp\'s own session')
  const refused = (await sign(suiteToken)).json()
  t.equal(refused.code, 'WECOM_WEB_NOT_CONFIGURED', 'the suite\'s session')
  t.match(refused.message, /^suite \S+'s session has no web app on this server$/, 'saying so, not that the corp has none')
})

t.test('a suite_access_token WeCom ended early (40082, 42009) is fetched again once, and the login goes on', async (t) => {
  const p = await provider(t)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  t.equal((await p.login(CORP_A, 'zhangsan')).statusCode, 200)
  for (const errcode of [40082, 42009]) {
    const before = p.sim.calls['service/get_suite_token']
    p.sim.inject('service/miniprogram/jscode2session', { errcode })
    const res = await p.login(CORP_A, 'zhangsan')
    t.equal(res.statusCode, 200, `${errcode}: the login answered`)
    t.equal(p.sim.calls['service/get_suite_token'] - before, 1, `${errcode}: one new suite token`)
  }
})

t.test('the corp uninstalls during a refresh\'s member recheck: the refresh is refused and the session ends', async (t) => {
  const meanwhile: { run?: () => Promise<unknown> } = {}
  const p = await provider(t, { session: { recheckInterval: 1 }, authorize: async () => { await meanwhile.run?.(); return true } })
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const session = (await p.login(CORP_A, 'zhangsan')).json()
  meanwhile.run = async () => { meanwhile.run = undefined; await p.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId }) }
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const refresh = () => p.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: session.refresh_token } })
  const raced = await refresh()
  t.equal(raced.json().code, 'WECOM_CORP_NOT_ALLOWED', 'no access token outlives the uninstall')
  t.equal((await refresh()).json().code, 'WECOM_REFRESH_INVALID', 'the session ended')
})

t.test('a suite_access_token refused even fresh backs get_suite_token off, as gettoken does: no fetch per login', async (t) => {
  const p = await provider(t)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  t.equal((await p.login(CORP_A, 'zhangsan')).statusCode, 200)
  p.sim.inject('service/miniprogram/jscode2session', { errcode: 40082 }, Infinity)
  const before = p.sim.calls['service/get_suite_token']
  const answers = []
  for (let i = 0; i < 5; i++) answers.push((await p.login(CORP_A, 'zhangsan')).statusCode)
  t.same(answers, [503, 503, 503, 503, 503])
  // One fetch for the first login's retry; then the back-off (1 s, doubling) answers. At most two
  // for a machine so loaded that five logins took over that second.
  const fetched = p.sim.calls['service/get_suite_token'] - before
  t.ok(fetched >= 1 && fetched <= 2, `${fetched} get_suite_token for five logins`)
})
