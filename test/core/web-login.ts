import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { jsapiSignature } from '../../src/testing/simulator.js'
import { createLoginStates, STATE_TTL } from '../../src/web/state.js'
import { assertNoSecrets, seenAccessTokens } from '../helpers/secrets.js'
import { browserGet, cookiesOf, pick, webLogin } from '../helpers/web.js'
import { CORP_A, CORP_B, PROFILE_A, SECRET_A, SECRET_B, setup, WEB_A, WEB_HOST } from '../helpers/setup.js'

// The browser's way in (issue 18): a page inside WeCom (OAuth2) and the PC browser (web login),
// against the simulator's pages, with the session in cookies.

const ORIGIN = `http://${WEB_HOST}`
const web = { origins: [ORIGIN], cookie: { secure: false } }

async function harness (t: Test, options: Record<string, unknown> = {}, extend?: (app: FastifyInstance) => void) {
  const h = await setup(t, { corps: [{ corpId: CORP_A, secret: SECRET_A, web: WEB_A }, { corpId: CORP_B, secret: SECRET_B }], web, ...options }, {}, (app) => {
    app.post('/api/transfer', { onRequest: app.wecom.authenticate, preHandler: app.wecom.csrfProtection }, async () => ({ moved: true }))
    app.get('/api/profile', { onRequest: app.wecom.authenticate }, async (request) => (await app.wecom.profile(request)) ?? { profile: null })
    extend?.(app)
  })
  return { ...h, get: browserGet(h.app) }
}

t.test('a page inside WeCom: OAuth2 with the web app, a session in cookies, and the host\'s route passes', async (t) => {
  const h = await harness(t)
  const { start, back, callback, cookies, jar } = await webLogin(h, 'redirect=/home&via=oauth')
  t.equal(start.statusCode, 302)
  const to = new URL(start.headers.location as string)
  t.equal(`${to.origin}${to.pathname}`, h.sim.authorizeUrl)
  t.match(Object.fromEntries(to.searchParams), { appid: CORP_A, response_type: 'code', scope: 'snsapi_base', agentid: String(WEB_A.agentId), redirect_uri: `${ORIGIN}/wecom/web/callback` })
  t.equal(to.hash, '#wechat_redirect')
  t.match(cookiesOf(start).get('wecom_state')?.attributes, /HttpOnly/)
  t.match(cookiesOf(start).get('wecom_state')?.attributes, /Path=\/wecom\/web\/callback/)
  t.equal(back.searchParams.get('state'), to.searchParams.get('state'))

  t.equal(callback.statusCode, 302, callback.body)
  t.equal(callback.headers.location, '/home')
  t.match(cookies.get('wecom_access')?.attributes, /HttpOnly.*SameSite=Lax|SameSite=Lax.*HttpOnly/)
  t.match(cookies.get('wecom_refresh')?.attributes, /Path=\/wecom\/refresh/)
  const me = await h.get('/api/me', jar)
  t.equal(me.statusCode, 200)
  t.same(me.json(), { userid: 'zhangsan', corpid: CORP_A })
  t.equal(h.sim.calls['auth/getuserinfo'], 1)
})

t.test('the PC browser: WeCom\'s login page by default outside WeCom, and the embedded panel\'s params', async (t) => {
  const h = await harness(t)
  const { start, callback, jar } = await webLogin(h, '')
  t.equal(new URL(start.headers.location as string).origin + new URL(start.headers.location as string).pathname, h.sim.ssoUrl)
  t.equal(new URL(start.headers.location as string).searchParams.get('login_type'), 'CorpApp')
  t.equal(callback.headers.location, '/')
  t.equal((await h.get('/api/me', jar)).statusCode, 200)

  const inside = await h.get('/wecom/web/login', undefined, { 'user-agent': 'Mozilla/5.0 wxwork/4.1.22 MicroMessenger/7.0.1' })
  t.equal(new URL(inside.headers.location as string).origin + new URL(inside.headers.location as string).pathname, h.sim.authorizeUrl, 'WeCom\'s browser gets OAuth2')

  const params = await h.get('/wecom/web/login/params?redirect=/desk')
  t.equal(params.statusCode, 200)
  t.match(params.json(), { login_type: 'CorpApp', appid: CORP_A, agentid: String(WEB_A.agentId), redirect_uri: `${ORIGIN}/wecom/web/callback`, redirect_type: 'callback' })
  t.ok(cookiesOf(params).has('wecom_state'))
})

t.test('refused, each with no session made', async (t) => {
  const h = await harness(t)
  const noSession = (res: LightMyRequestResponse) => !cookiesOf(res).get('wecom_access')?.value

  t.test('a state from another browser', async (t) => {
    const mine = await h.get('/wecom/web/login?via=oauth')
    const back = await pick(mine.headers.location as string, 'userid=zhangsan')
    const other = await h.get('/wecom/web/login?via=oauth')
    const res = await h.get(`${back.pathname}${back.search}`, `wecom_state=${cookiesOf(other).get('wecom_state')!.value}`)
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'WECOM_STATE_INVALID')
    t.ok(noSession(res))
    const none = await h.get(`${back.pathname}${back.search}`)
    t.equal(none.json().code, 'WECOM_STATE_INVALID', 'no state cookie at all')
  })

  t.test('a state used once already, even with a fresh code from WeCom', async (t) => {
    const first = await webLogin(h, 'via=oauth')
    t.equal(first.callback.statusCode, 302)
    const fresh = await pick(first.start.headers.location as string, 'userid=zhangsan')
    const again = await h.get(`${fresh.pathname}${fresh.search}`, `wecom_state=${first.stateCookie!.value}`)
    t.equal(again.statusCode, 403)
    t.equal(again.json().code, 'WECOM_STATE_INVALID')
    t.ok(noSession(again))
  })

  t.test('a redirect to another site, before anything else', async (t) => {
    for (const redirect of ['https://evil.example/x', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
      const res = await h.get(`/wecom/web/login?redirect=${encodeURIComponent(redirect)}`)
      t.equal(res.statusCode, 400, redirect)
      t.equal(res.json().code, 'WECOM_REDIRECT_INVALID')
      t.notOk(cookiesOf(res).has('wecom_state'), 'no state issued')
    }
  })

  t.test('someone who is not a member, a member outside the visible range', async (t) => {
    for (const who of ['openid=o-wechat-visitor', 'userid=lisi']) {
      const { callback } = await webLogin(h, 'via=oauth', who)
      t.equal(callback.statusCode, 403, who)
      t.equal(callback.json().code, 'WECOM_USER_FORBIDDEN')
      t.ok(noSession(callback))
    }
  })

  t.test('a corp without a web app, a corp not configured', async (t) => {
    t.equal((await h.get(`/wecom/web/login?corpId=${CORP_B}`)).json().code, 'WECOM_WEB_NOT_CONFIGURED')
    t.equal((await h.get('/wecom/web/login?corpId=ww-nobody')).json().code, 'WECOM_CORP_UNKNOWN')
  })
})

t.test('an expired state is refused: a login may take the code\'s five minutes, no more', async (t) => {
  let now = 1_000_000
  const claimed = new Set<string>()
  const states = createLoginStates(Buffer.alloc(32, 7), async (key) => !claimed.has(key) && Boolean(claimed.add(key)), () => now)
  const login = { corpId: CORP_A, redirect: '/', scope: 'snsapi_base' as const, via: 'oauth' as const }
  const fresh = states.issue(login)
  now += STATE_TTL
  t.same(await states.consume(fresh.state, fresh.cookie), login, 'at five minutes')
  const late = states.issue(login)
  now += STATE_TTL + 1
  await t.rejects(states.consume(late.state, late.cookie), { code: 'WECOM_STATE_INVALID' }, 'past five minutes')
  const forged = states.issue(login)
  const [payload] = forged.cookie.split('.')
  await t.rejects(states.consume(forged.state, `${payload}.${'A'.repeat(43)}`), { code: 'WECOM_STATE_INVALID' }, 'a cookie not ours')
})

t.test('refresh and logout by cookie: from the app\'s pages only (Origin, Sec-Fetch-Site)', async (t) => {
  const h = await harness(t)
  const { jar, cookies } = await webLogin(h, 'via=oauth')
  const refreshCookie = `wecom_refresh=${cookies.get('wecom_refresh')!.value}`
  const post = (url: string, cookie: string, headers: Record<string, string>) =>
    h.app.inject({ method: 'POST', url, headers: { host: WEB_HOST, cookie, ...headers } })

  const crossSite = await post('/wecom/refresh', refreshCookie, { origin: 'https://evil.example' })
  t.equal(crossSite.statusCode, 403)
  t.equal(crossSite.json().code, 'WECOM_CSRF')
  const noOrigin = await post('/wecom/refresh', refreshCookie, { 'sec-fetch-site': 'cross-site' })
  t.equal(noOrigin.json().code, 'WECOM_CSRF', 'no Origin, and Sec-Fetch-Site not same-origin')
  // Found in review: `null` was taken for no Origin, and Sec-Fetch-Site then trusted.
  for (const route of ['/wecom/refresh', '/wecom/logout']) {
    const opaque = await post(route, jar, { origin: 'null', 'sec-fetch-site': 'same-origin' })
    t.equal(opaque.json().code, 'WECOM_CSRF', `${route}: Origin null is no page of the app`)
  }

  const renewed = await post('/wecom/refresh', refreshCookie, { origin: ORIGIN })
  t.equal(renewed.statusCode, 204, 'the refresh token was not spent by the refused requests')
  const next = cookiesOf(renewed)
  t.ok(next.get('wecom_access')?.value)
  t.not(next.get('wecom_refresh')?.value, cookies.get('wecom_refresh')!.value, 'rotated')

  const access = `wecom_access=${next.get('wecom_access')!.value}`
  const refused = await post('/wecom/logout', access, { origin: 'https://evil.example' })
  t.equal(refused.json().code, 'WECOM_CSRF')
  t.equal((await h.get('/api/me', access)).statusCode, 200, 'the refused logout ended nothing')
  const out = await post('/wecom/logout', access, { 'sec-fetch-site': 'same-origin' })
  t.equal(out.statusCode, 204)
  t.equal((await h.get('/api/me', access)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await h.get('/api/me', jar)).json().code, 'WECOM_TOKEN_REVOKED', 'the first access token too: one session')

  const bearer = await h.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${next.get('wecom_access')!.value}`, origin: 'https://evil.example' } })
  t.not(bearer.json().code, 'WECOM_CSRF', 'a bearer request is not a cookie request')
})

t.test('web options: a corp with web needs web.origins; unknown keys and bad values are named', async (t) => {
  const h = await harness(t)
  const register = (options: Record<string, unknown>) => import('fastify').then(async ({ default: Fastify }) => {
    const app = Fastify()
    const plugin = (await import('../../src/index.js')).default
    await app.register(plugin, { corps: [{ corpId: CORP_A, secret: 's', web: WEB_A }], jwt: { secret: 'x'.repeat(32) }, api: { baseUrl: h.sim.url }, ...options } as never)
    await app.ready()
    await app.close()
  })
  await t.rejects(register({}), /web is required when a corp has web/)
  await t.rejects(register({ web: { origins: ['https://a.test/path'] } }), /web\.origins\[0\] must be an origin only/)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { secur: false } } }), /unknown option "web\.cookie\.secur"/)
  await t.rejects(register({ web: { origins: ['app.example.com'] } }), /web\.origins\[0\] must be an origin such as/)
  await t.rejects(register({ web: { origins: ['https://*.example.com'] } }), /web\.origins\[0\] must name one host/)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { domain: 'evil; Path=/x' } } }), /web\.cookie\.domain must be a domain name/)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { access: 'same', refresh: 'same' } } }), /web\.cookie names must differ/)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { refresh: '__Host-r' } } }), /web\.cookie\.refresh __Host-r: the __Host- prefix needs Path=\//)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { access: '__Secure-a', secure: false } } }), /web\.cookie\.access __Secure-a: the __Secure- prefix needs secure: true/)
  await t.rejects(register({ web: { origins: [ORIGIN], cookie: { access: '__Host-a', domain: 'example.com' } } }), /the __Host- prefix allows no domain/)
  await register({ corps: [{ corpId: CORP_A, secret: 's', web: WEB_A }], web: { origins: [ORIGIN], cookie: { access: '__Host-a', refresh: '__Secure-r' } } })
  t.pass('__Host- on the access cookie, __Secure- on the others, when secure')
  await t.rejects(register({ web, api: { baseUrl: h.sim.url, ssoUrl: 'https://x.example/sso#x' } }), /api\.ssoUrl must have no query or fragment/)
  await t.rejects(register({ corps: [{ corpId: CORP_A, secret: 's' }], web }), /web needs a corp with web/)
  await t.rejects(register({ corps: [{ corpId: CORP_A, secret: 's', web: { agentId: 'abc', secret: 'w' } }], web }), /corps\[0\]\.web\.agentId must be WeCom's agentid/)
  await register({ corps: [{ corpId: CORP_A, secret: 's', web: { agentId: '1000005', secret: 'w' } }], web })
  t.pass('agentId as a numeric string')
})

t.test('the host\'s routes: authenticate refuses a cross-site cookie request that may change something; csrfProtection covers the rest', async (t) => {
  const h = await harness(t, {}, (app) => {
    app.post('/api/legacy', { onRequest: app.wecom.authenticate }, async () => ({ done: true }))
    app.get('/api/side-effect', { onRequest: app.wecom.authenticate, preHandler: app.wecom.csrfProtection }, async () => ({ done: true }))
    app.get('/api/misordered', { onRequest: [app.wecom.csrfProtection, app.wecom.authenticate] }, async () => ({ done: true }))
  })
  const { jar } = await webLogin(h, 'via=oauth')
  const access = jar.split('; ')[0]!
  const send = (method: 'GET' | 'POST', url: string, headers: Record<string, string>) => h.app.inject({ method, url, headers: { host: WEB_HOST, ...headers } })
  for (const url of ['/api/transfer', '/api/legacy']) {
    t.equal((await send('POST', url, { cookie: access, origin: 'https://evil.example' })).json().code, 'WECOM_CSRF', `${url}: by cookie from another site`)
    t.equal((await send('POST', url, { cookie: access, origin: ORIGIN })).statusCode, 200, `${url}: from the app's page`)
    t.equal((await send('POST', url, { authorization: `Bearer ${access.split('=')[1]}`, origin: 'https://evil.example' })).statusCode, 200, `${url}: bearer`)
  }
  t.equal((await send('GET', '/api/me', { cookie: access, origin: 'https://evil.example' })).statusCode, 200, 'a GET changes nothing')
  t.equal((await send('GET', '/api/side-effect', { cookie: access, origin: 'https://evil.example' })).json().code, 'WECOM_CSRF', 'a GET with side effects opts in')
  t.equal((await send('GET', '/api/misordered', { cookie: access, origin: ORIGIN })).json().code, 'WECOM_TOKEN_MISSING', 'csrfProtection before authenticate refuses, never passes silently')
})

t.test('the review\'s inputs: odd redirects, a prefix of the host\'s, a forged Host, a login without a code', async (t) => {
  const h = await harness(t)
  for (const redirect of ['/\u007f/evil', '/a b', '/首页', '/caf\u00e9']) {
    t.equal((await h.get(`/wecom/web/login?redirect=${encodeURIComponent(redirect)}`)).json().code, 'WECOM_REDIRECT_INVALID', redirect)
  }
  t.equal((await h.get(`/wecom/web/login?redirect=${encodeURIComponent('/%E9%A6%96%E9%A1%B5?q=1')}`)).statusCode, 302, 'a percent-encoded path is a path')
  const listed = await harness(t, { web: { ...web, redirects: ['https://例子.test/首页'] } })
  const abroad = await webLogin(listed, `via=oauth&redirect=${encodeURIComponent('https://例子.test/首页')}`)
  t.equal(abroad.callback.statusCode, 302, 'a listed URL in other scripts: no 500 after the session was made')
  t.equal(abroad.callback.headers.location, 'https://xn--fsqu00a.test/%E9%A6%96%E9%A1%B5', 'written as a Location header carries it')
  const forged = await h.get('/wecom/web/login?via=oauth', undefined, { host: 'evil.example' })
  t.equal(new URL(forged.headers.location as string).searchParams.get('redirect_uri'), `${ORIGIN}/wecom/web/callback`, 'WeCom is sent back to web.origins, not the Host header')
  const start = await h.get('/wecom/web/login?via=oauth')
  const state = new URL(start.headers.location as string).searchParams.get('state')!
  const cookie = `wecom_state=${cookiesOf(start).get('wecom_state')!.value}`
  t.equal((await h.get(`/wecom/web/callback?state=${state}`, cookie)).json().code, 'WECOM_INVALID_CODE', 'no code')
  const back = await pick(start.headers.location as string, 'userid=zhangsan')
  t.equal((await h.get(`${back.pathname}${back.search}`, cookie)).statusCode, 302, 'a callback without a code claimed no state')

  const nested = await import('fastify').then(({ default: Fastify }) => Fastify())
  t.teardown(() => nested.close())
  await nested.register(async (api) => {
    await api.register((await import('../../src/index.js')).default, {
      corps: [{ corpId: CORP_A, secret: SECRET_A, web: WEB_A }],
      jwt: { secret: 'x'.repeat(32) },
      web,
      api: { baseUrl: h.sim.url, authorizeUrl: h.sim.authorizeUrl, ssoUrl: h.sim.ssoUrl }
    })
    api.get('/me', { onRequest: api.wecom.authenticate }, async (request) => request.wecomUser)
  }, { prefix: '/api' })
  const inside = browserGet(nested)
  const first = await inside('/api/wecom/web/login?via=oauth&redirect=/api/me')
  t.match(cookiesOf(first).get('wecom_state')?.attributes, /Path=\/api\/wecom\/web\/callback/, 'the state cookie\'s path is the route\'s real one')
  const back2 = await pick(first.headers.location as string, 'userid=zhangsan')
  t.equal(back2.pathname, '/api/wecom/web/callback')
  const done = await inside(`${back2.pathname}${back2.search}`, `wecom_state=${cookiesOf(first).get('wecom_state')!.value}`)
  t.equal(done.statusCode, 302)
  t.match(cookiesOf(done).get('wecom_refresh')?.attributes, /Path=\/api\/wecom\/refresh/)
})

t.test('no secret in a log line or an answer: the web secret, codes, access and refresh tokens, WeCom\'s token', async (t) => {
  const h = await harness(t)
  const responses: LightMyRequestResponse[] = []
  const codes = new Set<string>()
  const tokens = new Set<string>()
  const refresh = new Set<string>()
  for (const who of ['userid=zhangsan', 'userid=lisi', 'openid=o-wechat-visitor']) {
    const login = await webLogin(h, 'via=oauth&scope=snsapi_privateinfo', who)
    codes.add(login.back.searchParams.get('code')!)
    // The callback's own answer sets the cookies: that is where tokens are meant to be.
    if (login.cookies.has('wecom_access')) {
      tokens.add(login.cookies.get('wecom_access')!.value)
      refresh.add(login.cookies.get('wecom_refresh')!.value)
    } else responses.push(login.callback)
    responses.push(login.start)
    // The same code again, with the spent state: refused, and the code not said back.
    responses.push(await h.get(`${login.back.pathname}${login.back.search}`, `wecom_state=${login.stateCookie!.value}`))
  }
  responses.push(await h.app.inject({ method: 'POST', url: '/wecom/jssdk/signature', headers: { host: WEB_HOST, cookie: `wecom_access=${[...tokens][0]}`, origin: ORIGIN }, payload: { url: `${ORIGIN}/` } }))
  const wecomTokens = new Set<string>()
  seenAccessTokens(h.sim, wecomTokens)
  assertNoSecrets(t, h.logs.lines, responses, [
    ['web app secret', new Set([WEB_A.secret])], ['OAuth code', codes], ['access token', tokens],
    ['refresh token', refresh], ['WeCom access token', wecomTokens],
    ['JS-SDK ticket', new Set([h.sim.jsapiTicket(CORP_A)!, h.sim.agentTicket(CORP_A, WEB_A.agentId)!])],
    ['profile field (mobile, email)', new Set([PROFILE_A.mobile, PROFILE_A.email])]
  ])
  t.equal(h.sim.calls['auth/getuserdetail'], 1, 'the profile was fetched, so its absence means something')
})

t.test('JS-SDK signatures: a signed-in member\'s page on web.origins, checked as WeCom checks them; 1,000 at a cold start cost one call per ticket', async (t) => {
  const h = await harness(t)
  const { jar } = await webLogin(h, 'via=oauth')
  const access = jar.split('; ')[0]!
  const sign = (url: string, headers: Record<string, string> = { cookie: access, origin: ORIGIN }) =>
    h.app.inject({ method: 'POST', url: '/wecom/jssdk/signature', headers: { host: WEB_HOST, ...headers }, payload: { url } })
  const page = `${ORIGIN}/orders?id=7#section`
  const answers = await Promise.all(Array.from({ length: 1000 }, () => sign(page)))
  t.ok(answers.every((res) => res.statusCode === 200), 'all signed')
  t.equal(h.sim.calls.get_jsapi_ticket, 1, 'one get_jsapi_ticket')
  t.equal(h.sim.calls['ticket/get'], 1, 'one ticket/get')
  const body = answers[0]!.json()
  t.match(body, { corpId: CORP_A, agentId: WEB_A.agentId })
  const signed = `${ORIGIN}/orders?id=7`
  t.equal(body.config.signature, jsapiSignature(h.sim.jsapiTicket(CORP_A)!, body.config.nonceStr, body.config.timestamp, signed), 'config: the corp\'s ticket')
  t.equal(body.agentConfig.signature, jsapiSignature(h.sim.agentTicket(CORP_A, WEB_A.agentId)!, body.agentConfig.nonceStr, body.agentConfig.timestamp, signed), 'agentConfig: the app\'s ticket')
  t.notOk(answers[0]!.body.includes(h.sim.jsapiTicket(CORP_A)!), 'no ticket in the answer')

  t.equal((await sign('https://evil.example/page')).json().code, 'WECOM_URL_NOT_ALLOWED')
  t.equal((await sign('not a url')).json().code, 'WECOM_URL_NOT_ALLOWED')
  t.equal((await sign(page, { cookie: access, origin: 'https://evil.example' })).json().code, 'WECOM_CSRF')
  t.equal((await sign(page, {})).json().code, 'WECOM_TOKEN_MISSING', 'only for a signed-in member')
})

t.test('a web session\'s refresh rechecks the member on the web app, not the mini program\'s', async (t) => {
  const h = await harness(t, { session: { recheckInterval: 1 } })
  const { cookies } = await webLogin(h, 'via=oauth')
  t.equal(h.sim.calls.gettoken, 1, 'the web app\'s token, for the login')
  // Past the recheck interval (1 s), so that the refresh asks user/get again.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const userGets = h.sim.calls['user/get']
  const renewed = await h.app.inject({ method: 'POST', url: '/wecom/refresh', headers: { host: WEB_HOST, origin: ORIGIN, cookie: `wecom_refresh=${cookies.get('wecom_refresh')!.value}` } })
  t.equal(renewed.statusCode, 204)
  t.equal(h.sim.calls['user/get'], userGets + 1, 'rechecked')
  t.equal(h.sim.calls.gettoken, 1, 'on the web app\'s token: no token fetched for the mini program\'s app')
})

t.test('one session list across surfaces: list, end one from another surface, end all but the current one', async (t) => {
  const h = await harness(t)
  const mini = (await h.app.inject({ method: 'POST', url: '/wecom/login', headers: { 'user-agent': 'wxwork miniprogram' }, payload: { code: h.sim.issueCode(CORP_A, 'zhangsan') } })).json()
  const h5 = await webLogin(h, 'via=oauth')
  const pc = await webLogin(h, 'via=sso')
  const other = (await h.login('wangwu')).statusCode
  t.equal(other, 403, 'a disabled member has none')
  const bearer = { authorization: `Bearer ${mini.access_token}` }
  const listed = await h.app.inject({ url: '/wecom/sessions', headers: bearer })
  t.equal(listed.statusCode, 200)
  const list = listed.json().sessions as Array<{ sid: string, surface: string, current: boolean, userAgent: string | null, created: string, refreshed: string | null }>
  t.same(list.map((s) => s.surface), ['miniprogram', 'h5', 'web'], 'oldest first, every surface')
  t.same(list.map((s) => s.current), [true, false, false], 'the asking session marked')
  t.equal(list[0]!.userAgent, 'wxwork miniprogram')
  t.ok(!Number.isNaN(Date.parse(list[0]!.created)))
  t.equal(list[0]!.refreshed, null)
  t.same(await h.app.wecom.sessions(CORP_A, 'zhangsan'), list.map((s) => ({ ...s, current: false })), 'app.wecom.sessions for the host\'s admin pages')

  // The mini program ends the PC session.
  const pcSid = list[2]!.sid
  t.equal((await h.app.inject({ method: 'DELETE', url: `/wecom/sessions/${pcSid}`, headers: bearer })).statusCode, 204)
  t.equal((await h.get('/api/me', pc.jar)).json().code, 'WECOM_TOKEN_REVOKED', 'the PC browser is signed out')
  t.equal((await h.get('/api/me', h5.jar)).statusCode, 200, 'the page inside WeCom is not')

  // Someone else's sid ends nothing.
  const lisi = (await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_B, 'zhaoliu'), corpId: CORP_B } })).json()
  const [theirs] = (await h.app.wecom.sessions(CORP_B, 'zhaoliu'))
  t.equal((await h.app.inject({ method: 'DELETE', url: `/wecom/sessions/${theirs!.sid}`, headers: bearer })).statusCode, 204)
  t.equal((await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${lisi.access_token}` } })).statusCode, 200, 'another member\'s session lives on')

  // By cookie, from the app's page: CSRF-checked, then all but the current one end.
  const h5Access = h5.jar.split('; ')[0]!
  const crossSite = await h.app.inject({ method: 'DELETE', url: '/wecom/sessions', headers: { host: WEB_HOST, cookie: h5Access, origin: 'https://evil.example' } })
  t.equal(crossSite.json().code, 'WECOM_CSRF')
  t.equal((await h.app.inject({ method: 'DELETE', url: '/wecom/sessions', headers: { host: WEB_HOST, cookie: h5Access, origin: ORIGIN } })).statusCode, 204)
  t.equal((await h.app.inject({ url: '/api/me', headers: bearer })).json().code, 'WECOM_TOKEN_REVOKED', 'the mini program is signed out')
  t.equal((await h.get('/api/me', h5.jar)).statusCode, 200, 'the current session lives on')
  t.same((await h.app.wecom.sessions(CORP_A, 'zhangsan')).map((s) => s.surface), ['h5'])
  await t.rejects(h.app.wecom.sessions(CORP_A, ''), { code: 'WECOM_INVALID_ARGUMENT' })
})

t.test('snsapi_privateinfo: the member\'s private fields sealed with the session, read with app.wecom.profile, never in a token or a log', async (t) => {
  const h = await harness(t)
  const base = await webLogin(h, 'via=oauth')
  const nosy = await webLogin(h, 'via=oauth&scope=snsapi_privateinfo')
  t.equal(new URL(nosy.start.headers.location as string).searchParams.get('scope'), 'snsapi_privateinfo')
  t.equal(h.sim.calls['auth/getuserdetail'], 1, 'asked only for the privateinfo login')
  const profileOf = async (jar: string) => (await h.app.inject({ url: '/api/profile', headers: { host: WEB_HOST, cookie: jar.split('; ')[0]! } })).json()
  t.match(await profileOf(nosy.jar), { userid: 'zhangsan', ...PROFILE_A })
  t.same(await profileOf(base.jar), { profile: null }, 'a snsapi_base login has none')
  const token = nosy.cookies.get('wecom_access')!.value
  const payload = Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')
  for (const value of Object.values(PROFILE_A)) {
    t.notOk(payload.includes(value), 'not in the access token')
    t.notOk(h.logs.lines.join('\n').includes(value), 'not in a log line')
  }
})

t.test('a host with its own @fastify/cookie (signing by default): the browser login works as without it', async (t) => {
  const { fastifyCookie } = await import('@fastify/cookie')
  for (const order of ['before', 'after'] as const) {
    const app = (await import('fastify')).default()
    t.teardown(() => app.close())
    const h = await harness(t)
    if (order === 'before') await app.register(fastifyCookie, { secret: 'host-cookie-secret-0123456789', parseOptions: { signed: true } })
    await app.register((await import('../../src/index.js')).default, {
      corps: [{ corpId: CORP_A, secret: SECRET_A, web: WEB_A }],
      jwt: { secret: 'x'.repeat(32) },
      web,
      api: { baseUrl: h.sim.url, authorizeUrl: h.sim.authorizeUrl, ssoUrl: h.sim.ssoUrl }
    })
    if (order === 'after') await app.register(fastifyCookie, { secret: 'host-cookie-secret-0123456789', parseOptions: { signed: true } })
    app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => request.wecomUser)
    const { callback, jar } = await webLogin({ get: browserGet(app) }, 'via=oauth')
    t.equal(callback.statusCode, 302, `${order}: logged in`)
    t.equal((await browserGet(app)('/api/me', jar)).statusCode, 200, `${order}: the access cookie passes`)
  }
})

t.test('JS-SDK signatures only for a page as a browser writes it on web.origins: no userinfo, backslash or port tricks', async (t) => {
  const h = await harness(t)
  const { jar } = await webLogin(h, 'via=oauth')
  const sign = (url: string) => h.app.inject({ method: 'POST', url: '/wecom/jssdk/signature', headers: { host: WEB_HOST, cookie: jar.split('; ')[0]!, origin: ORIGIN }, payload: { url } })
  for (const url of [`${ORIGIN}@evil.example/`, `${ORIGIN}\\@evil.example/`, `${ORIGIN}:8080/`, `${ORIGIN}.evil.example/`, 'http:app.test/p', ` ${ORIGIN}/p`, `blob:${ORIGIN}/x`,
    // Nothing a browser's location.href holds: it percent-encodes these.
    `${ORIGIN}/p\n`, `${ORIGIN}/p\u0000`, `${ORIGIN}/p `, `${ORIGIN}/页面`, `${ORIGIN}/p\ud800`, `${ORIGIN}/a b`, `${ORIGIN}/p\t`]) {
    t.equal((await sign(url)).json().code, 'WECOM_URL_NOT_ALLOWED', url)
  }
  for (const url of [ORIGIN, `${ORIGIN}/`, `${ORIGIN}?a=1`, `${ORIGIN}/p#frag`, `${ORIGIN}/%E9%A1%B5%E9%9D%A2?q=%20`]) t.equal((await sign(url)).statusCode, 200, url)
})

async function signer (t: Test) {
  const h = await harness(t)
  const { jar } = await webLogin(h, 'via=oauth')
  const sign = () => h.app.inject({ method: 'POST', url: '/wecom/jssdk/signature', headers: { host: WEB_HOST, cookie: jar.split('; ')[0]!, origin: ORIGIN }, payload: { url: `${ORIGIN}/` } })
  return { h, sign }
}

t.test('a ticket endpoint answering a code errcode: the server\'s configuration (502, remembered), not the page\'s code', async (t) => {
  const { h, sign } = await signer(t)
  h.sim.inject('get_jsapi_ticket', { errcode: 40029 }, 1)
  const coded = [await sign(), await sign()]
  t.same(coded.map((res) => res.statusCode), [502, 502])
  t.same(coded.map((res) => res.json().code), ['WECOM_UPSTREAM_ERROR', 'WECOM_UPSTREAM_ERROR'], 'not WECOM_INVALID_CODE: the page sent no code to log in again with')
  t.equal(h.sim.calls.get_jsapi_ticket, 1, 'remembered: the second page did not ask again')
})

t.test('a ticket endpoint\'s busy spell (-1) backs the fetch off without spending the hourly cap', async (t) => {
  const { h, sign } = await signer(t)
  h.sim.inject('get_jsapi_ticket', { errcode: -1 }, Infinity)
  const busy: LightMyRequestResponse[] = []
  for (let i = 0; i < 10; i++) busy.push(await sign())
  t.ok(busy.every((res) => res.statusCode === 503 && res.json().code === 'WECOM_UNAVAILABLE' && Number(res.headers['retry-after']) >= 1), 'each 503 with a Retry-After')
  // Two calls (-1 retried once), then the back-off answers for a second. At most four: a machine
  // so loaded that ten requests took over that second sees the doubled back-off's two more.
  // Before, each request tried four times (-1 retried thrice), every try spending the hourly cap.
  t.ok(h.sim.calls.get_jsapi_ticket <= 4, `${h.sim.calls.get_jsapi_ticket} get_jsapi_ticket calls for ten requests`)
  h.sim.clearFaults()
  await sleep(Number(busy.at(-1)!.headers['retry-after']) * 1000 + 100)
  t.equal((await sign()).statusCode, 200, 'signed once the back-off is over')
})

t.test('a browser that ends its own current session keeps no dead cookies', async (t) => {
  const h = await harness(t)
  const { jar } = await webLogin(h, 'via=oauth')
  const access = jar.split('; ')[0]!
  const [mine] = await h.app.wecom.sessions(CORP_A, 'zhangsan')
  const res = await h.app.inject({ method: 'DELETE', url: `/wecom/sessions/${mine!.sid}`, headers: { host: WEB_HOST, cookie: access, origin: ORIGIN } })
  t.equal(res.statusCode, 204)
  t.equal(cookiesOf(res).get('wecom_access')?.value, '', 'the access cookie cleared')
  t.match(cookiesOf(res).get('wecom_access')?.attributes, /Max-Age=0/)
  t.equal((await h.get('/api/me', access)).json().code, 'WECOM_TOKEN_REVOKED')
})

// Found in review: only a 401 cleared the cookies, while a member refused at the refresh's recheck
// (403) has their session ended too, and the browser kept its dead refresh cookie.
t.test('a cookie refresh refused for good (the member may no longer use the app) clears the session cookies', async (t) => {
  const h = await harness(t, { session: { recheckInterval: 1 } })
  const { cookies } = await webLogin(h, 'via=oauth')
  await h.sim.updateMember(CORP_A, 'zhangsan', { status: 2 })
  // Past the recheck interval (1 s), measured by the plugin's own clock.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const refresh = () => h.app.inject({ method: 'POST', url: '/wecom/refresh', headers: { host: WEB_HOST, origin: ORIGIN, cookie: `wecom_refresh=${cookies.get('wecom_refresh')!.value}` } })
  const refused = await refresh()
  t.equal(refused.json().code, 'WECOM_USER_FORBIDDEN')
  t.equal(cookiesOf(refused).get('wecom_refresh')?.value, '', 'the refresh cookie cleared')
  t.equal(cookiesOf(refused).get('wecom_access')?.value, '', 'the access cookie cleared')
  t.equal((await refresh()).json().code, 'WECOM_REFRESH_INVALID', 'the session is gone')
})

// A client (fetch wrappers, axios instances) that always sends `Content-Type: application/json`
// sends it with an empty body too where a route takes none: that is no body, not malformed JSON.
t.test('the routes that take no body: an empty body with a JSON type is no body', async (t) => {
  const h = await harness(t)
  const empty = { 'content-type': 'application/json' }
  const byCookie = async () => {
    const { jar } = await webLogin(h, 'via=oauth')
    return { host: WEB_HOST, cookie: jar, origin: ORIGIN, ...empty }
  }
  const refreshed = await h.app.inject({ method: 'POST', url: '/wecom/refresh', headers: await byCookie(), payload: '' })
  t.equal(refreshed.statusCode, 204, `POST /refresh by cookie: ${refreshed.body}`)
  const [other] = await h.app.wecom.sessions(CORP_A, 'zhangsan')
  const one = await h.app.inject({ method: 'DELETE', url: `/wecom/sessions/${other!.sid}`, headers: await byCookie(), payload: '' })
  t.equal(one.statusCode, 204, `DELETE /sessions/:sid: ${one.body}`)
  const all = await h.app.inject({ method: 'DELETE', url: '/wecom/sessions', headers: await byCookie(), payload: '' })
  t.equal(all.statusCode, 204, `DELETE /sessions: ${all.body}`)
  const bearer = { authorization: `Bearer ${(await h.login('zhangsan')).json().access_token}`, ...empty }
  const everyOther = await h.app.inject({ method: 'DELETE', url: '/wecom/sessions', headers: bearer, payload: '' })
  t.equal(everyOther.statusCode, 204, `DELETE /sessions by bearer: ${everyOther.body}`)
  const out = await h.app.inject({ method: 'POST', url: '/wecom/logout', headers: bearer, payload: '' })
  t.equal(out.statusCode, 204, `POST /logout by bearer: ${out.body}`)
  const fresh = { authorization: `Bearer ${(await h.login('zhangsan')).json().access_token}`, ...empty }
  const malformed = await h.app.inject({ method: 'DELETE', url: '/wecom/sessions', headers: fresh, payload: '{"a":' })
  t.equal(malformed.statusCode, 400, `a body that is there and malformed is still refused: ${malformed.body}`)
})
