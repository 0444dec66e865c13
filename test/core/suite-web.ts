import t, { type Test } from 'tap'
import { setup, simulatorCorps, CORP_A, CORP_B, PROFILE_A, WEB_HOST } from '../helpers/setup.js'
import { OTHER, PROVIDER, SUITE, suiteOptions } from '../helpers/suites.js'
import { browserGet, cookiesOf, webLogin } from '../helpers/web.js'

// A suite's pages (issues 18 and 19): a third-party suite's own (appid its SuiteID, no agentid:
// OAuth inside WeCom, login_type=ServiceApp on the PC, the code to service/auth/getuserinfo3rd),
// and a 代开发 suite's app in the corp that installed it (the corp's own pages, on its 代开发 token).

const ORIGIN = `http://${WEB_HOST}`

/** A provider's app with browser sessions and no corp of its own; CORP_A installed SUITE (third-party), CORP_B installed OTHER (代开发). */
async function provider (t: Test) {
  const h = await setup(t, { ...suiteOptions, corps: undefined, web: { origins: [ORIGIN], cookie: { secure: false } } },
    { corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [{ ...SUITE, trustedDomains: [WEB_HOST] }, OTHER] }, (app) => {
      app.get('/api/profile', { onRequest: app.wecom.authenticate }, async (request) => (await app.wecom.profile(request)) ?? { profile: null })
    })
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  for (const suite of [SUITE, OTHER]) await h.sim.pushSuiteTicket(suite.suiteId)
  t.same(await h.sim.install(CORP_A, { suiteId: SUITE.suiteId }), { status: 200, body: 'success' })
  t.same(await h.sim.install(CORP_B, { suiteId: OTHER.suiteId }), { status: 200, body: 'success' })
  return { ...h, get: browserGet(h.app) }
}

t.test('a third-party suite\'s pages: appid the SuiteID, getuserinfo3rd, the corp\'s install and member check; uninstall ends the session', async (t) => {
  const h = await provider(t)
  const inside = await webLogin(h, `suiteId=${SUITE.suiteId}&via=oauth&redirect=/home`, `corpid=${CORP_A}&userid=zhangsan`)
  const to = new URL(inside.start.headers.location as string)
  t.equal(`${to.origin}${to.pathname}`, h.sim.authorizeUrl)
  t.same(Object.fromEntries(to.searchParams), { appid: SUITE.suiteId, redirect_uri: `${ORIGIN}/wecom/web/callback`, response_type: 'code', scope: 'snsapi_base', state: to.searchParams.get('state') }, 'no agentid')
  t.equal(inside.callback.statusCode, 302, inside.callback.body)
  t.equal(inside.callback.headers.location, '/home')
  const me = await h.get('/api/me', inside.jar)
  t.same(me.json(), { userid: 'zhangsan', corpid: CORP_A, suiteId: SUITE.suiteId }, 'the session carries the suite')
  t.equal(h.sim.calls['service/auth/getuserinfo3rd'], 1)
  t.equal(h.sim.calls['auth/getuserinfo'], 0)

  const pc = await webLogin(h, `suiteId=${SUITE.suiteId}&via=sso`, `corpid=${CORP_A}&userid=zhangsan`)
  const sso = new URL(pc.start.headers.location as string)
  t.equal(`${sso.origin}${sso.pathname}`, h.sim.ssoUrl)
  t.same(Object.fromEntries(sso.searchParams), { login_type: 'ServiceApp', appid: SUITE.suiteId, redirect_uri: `${ORIGIN}/wecom/web/callback`, state: sso.searchParams.get('state') })
  t.equal(pc.callback.statusCode, 302, 'the PC browser, login_type=ServiceApp')
  const params = await h.get(`/wecom/web/login/params?suiteId=${SUITE.suiteId}`)
  t.same(params.json(), { login_type: 'ServiceApp', appid: SUITE.suiteId, redirect_uri: `${ORIGIN}/wecom/web/callback`, state: params.json().state, redirect_type: 'callback' }, 'the embedded panel\'s, no agentid')
  const surfaces = (await h.get('/wecom/sessions', inside.jar)).json().sessions.map((s: { surface: string }) => s.surface).sort()
  t.same(surfaces, ['h5', 'web'])

  const privateinfo = await webLogin(h, `suiteId=${SUITE.suiteId}&via=oauth&scope=snsapi_privateinfo`, `corpid=${CORP_A}&userid=zhangsan`)
  t.match((await h.get('/api/profile', privateinfo.jar)).json(), PROFILE_A, 'the profile from getuserdetail3rd, sealed with the session')
  t.equal(h.sim.calls['service/auth/getuserdetail3rd'], 1)

  const refusals = [
    [`corpid=${CORP_B}&userid=zhaoliu`, 403, 'WECOM_CORP_NOT_ALLOWED', 'a corp that has not installed the suite'],
    [`corpid=${CORP_A}&openid=o-wechat-visitor`, 403, 'WECOM_USER_FORBIDDEN', 'someone who is not a member'],
    [`corpid=${CORP_A}&userid=lisi`, 403, 'WECOM_USER_FORBIDDEN', 'outside the suite app\'s visible range']
  ] as const
  for (const [who, status, code, why] of refusals) {
    const refused = await webLogin(h, `suiteId=${SUITE.suiteId}&via=oauth`, who)
    t.equal(refused.callback.statusCode, status, why)
    t.equal(refused.callback.json().code, code, why)
    t.notOk(refused.cookies.has('wecom_access'), `${why}: no session cookie`)
  }
  const unknown = await h.get('/wecom/web/login?suiteId=wwnosuchsuite')
  t.equal(unknown.json().code, 'WECOM_SUITE_UNKNOWN')
  t.notOk(cookiesOf(unknown).has('wecom_state'), 'refused before any state')
  t.equal((await h.get('/wecom/web/login')).json().code, 'WECOM_INVALID_ARGUMENT', 'no corp has a web app: the suite must be named')

  await h.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId })
  t.equal((await h.get('/api/me', inside.jar)).json().code, 'WECOM_TOKEN_REVOKED', 'the corp uninstalled: its browser session ends at once')
  const again = await webLogin(h, `suiteId=${SUITE.suiteId}&via=sso`, `corpid=${CORP_A}&userid=zhangsan`)
  t.equal(again.callback.json().code, 'WECOM_CORP_NOT_ALLOWED', 'and its members\' web logins are refused')
})

t.test('a 代开发 suite\'s pages: the corp\'s own (appid the CorpID, the install\'s agentid), auth/getuserinfo on its 代开发 token', async (t) => {
  const h = await provider(t)
  const [agentId] = (await h.app.wecom.corps()).find((corp) => corp.corpId === CORP_B)!.agentIds
  const inside = await webLogin(h, `suiteId=${OTHER.suiteId}&corpId=${CORP_B}&via=oauth`, 'userid=zhaoliu')
  const to = new URL(inside.start.headers.location as string)
  t.match(Object.fromEntries(to.searchParams), { appid: CORP_B, agentid: String(agentId) })
  t.equal(inside.callback.statusCode, 302, inside.callback.body)
  t.same((await h.get('/api/me', inside.jar)).json(), { userid: 'zhaoliu', corpid: CORP_B, suiteId: OTHER.suiteId })
  t.equal(h.sim.calls['auth/getuserinfo'], 1, 'the corp app\'s getuserinfo')
  const pc = await webLogin(h, `suiteId=${OTHER.suiteId}&corpId=${CORP_B}&via=sso`, 'userid=zhaoliu')
  t.match(Object.fromEntries(new URL(pc.start.headers.location as string).searchParams), { login_type: 'CorpApp', appid: CORP_B, agentid: String(agentId) })
  t.equal(pc.callback.statusCode, 302)

  t.equal((await h.get(`/wecom/web/login?suiteId=${OTHER.suiteId}`)).json().code, 'WECOM_INVALID_ARGUMENT', 'a 代开发 suite\'s pages name the corp')
  t.equal((await h.get(`/wecom/web/login?suiteId=${OTHER.suiteId}&corpId=${CORP_A}`)).json().code, 'WECOM_CORP_NOT_ALLOWED', 'a corp that has not installed it')
  await h.sim.uninstall(CORP_B, { suiteId: OTHER.suiteId })
  t.equal((await h.get('/api/me', inside.jar)).json().code, 'WECOM_TOKEN_REVOKED')
})

t.test('a member getuserdetail3rd refuses is the member\'s answer (403), as on the corp\'s own pages, not a misconfiguration (502)', async (t) => {
  const h = await provider(t)
  h.sim.inject('service/auth/getuserdetail3rd', { errcode: 60011 }, 1)
  const refused = await webLogin(h, `suiteId=${SUITE.suiteId}&via=oauth&scope=snsapi_privateinfo`, `corpid=${CORP_A}&userid=zhangsan`)
  t.equal(refused.callback.statusCode, 403)
  t.equal(refused.callback.json().code, 'WECOM_USER_FORBIDDEN')
  t.equal(refused.jar, '', 'no session')
})
