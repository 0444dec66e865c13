import t, { type Test } from 'tap'
import { request } from 'undici'
import {
  createWecomSimulator,
  jsapiSignature,
  type SimulatedCorp,
  type WecomSimulator,
} from '../../src/testing/simulator.js'

// The simulator's side of the web surfaces: WeCom's OAuth2 and web-login pages, the endpoints a web
// app's server calls with the code, and the JS-SDK tickets with their hourly limits.

const WEB = { agentId: 1000005, secret: 'acme-web-secret-0123456789', trustedDomains: ['app.acme.test', '127.0.0.1:3000'] }
const OTHER = { agentId: 1000006, secret: 'acme-other-secret-0123456789', trustedDomains: ['other.acme.test'] }
const ACME: SimulatedCorp = {
  corpId: 'ww-acme',
  secret: 'acme-mp-secret-0123456789',
  webApps: [WEB, OTHER],
  members: [
    { userid: 'alice', name: 'Alice', gender: '2', avatar: 'https://a.test/alice.png', mobile: '13800000000', email: 'alice@acme.test', biz_mail: 'alice@biz.acme.test', address: 'Shenzhen', qr_code: 'https://a.test/qr' },
    { userid: 'bob', name: 'Bob', visible: false },
    { userid: 'eve', name: '<Eve & "co">' },
  ],
  outsiders: [{ openid: 'o-wechat-1', externalUserid: 'wm-ext-1', name: 'Visitor' }, { openid: 'o-wechat-2' }],
}
const GLOBEX: SimulatedCorp = {
  corpId: 'ww-globex',
  secret: 'globex-mp-secret-0123456789',
  webApps: [{ agentId: 2000001, secret: 'globex-web-secret-0123456789', trustedDomains: ['app.acme.test'] }],
  members: [{ userid: 'gina' }],
}
const SECRETS = [ACME.secret, WEB.secret, OTHER.secret, GLOBEX.secret]
const NOT_FOUND = { code: 'SIMULATOR_NOT_FOUND' }
const REDIRECT = 'https://app.acme.test/wecom/back?from=menu'

type Answer = Record<string, unknown> & { errcode: number, errmsg: string }

async function start (t: Test, now?: () => number): Promise<WecomSimulator> {
  const sim = await createWecomSimulator({ corps: [ACME, GLOBEX], now })
  t.teardown(() => sim.close())
  return sim
}

/** A page, not followed: its status, Location and body. */
async function open (url: string, params: Record<string, string | undefined>) {
  const query = new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined))
  const res = await request(`${url}?${query}`)
  const body = await res.body.text()
  return { status: res.statusCode, location: res.headers.location as string | undefined, body }
}

function authorize (sim: WecomSimulator, params: Record<string, string | undefined> = {}) {
  return open(sim.authorizeUrl, { appid: ACME.corpId, redirect_uri: REDIRECT, response_type: 'code', scope: 'snsapi_base', state: 'S1', agentid: String(WEB.agentId), ...params })
}

function sso (sim: WecomSimulator, params: Record<string, string | undefined> = {}) {
  return open(sim.ssoUrl, { login_type: 'CorpApp', appid: ACME.corpId, agentid: String(WEB.agentId), redirect_uri: REDIRECT, state: 'S2', ...params })
}

/** The code of a page's redirect, after checking where it goes. */
function codeOf (t: Test, page: { status: number, location?: string }, state = 'S1'): string {
  t.equal(page.status, 302)
  const location = new URL(page.location!)
  t.equal(`${location.origin}${location.pathname}`, 'https://app.acme.test/wecom/back')
  t.equal(location.searchParams.get('from'), 'menu', 'the redirect_uri\'s own query stays')
  t.equal(location.searchParams.get('state'), state)
  const code = location.searchParams.get('code')!
  t.ok(code.length > 0 && Buffer.byteLength(code) <= 512, 'a code of at most 512 bytes')
  return code
}

async function get (sim: WecomSimulator, path: string, query: Record<string, string>): Promise<Answer> {
  return (await (await request(`${sim.url}/cgi-bin/${path}?${new URLSearchParams(query)}`)).body.json()) as Answer
}

async function tokenOf (sim: WecomSimulator, corpId: string, secret: string): Promise<string> {
  const answer = await get(sim, 'gettoken', { corpid: corpId, corpsecret: secret })
  if (answer.errcode !== 0) throw new Error(`gettoken failed: ${answer.errcode}`)
  return answer.access_token as string
}

const userInfo = (sim: WecomSimulator, token: string, code: string) => get(sim, 'auth/getuserinfo', { access_token: token, code })

async function userDetail (sim: WecomSimulator, token: string, body: string): Promise<Answer> {
  return (await (await request(`${sim.url}/cgi-bin/auth/getuserdetail?access_token=${token}`, { method: 'POST', body })).body.json()) as Answer
}

type Page = { status: number, location?: string, body: string }

/** An HTML page, with no redirect and no secret: its body. */
function html (t: Test, page: Page): string {
  t.equal(page.status, 200, 'as WeCom shows its pages')
  t.equal(page.location, undefined, 'no redirect')
  for (const secret of SECRETS) t.notMatch(page.body, secret, 'no secret on the page')
  return page.body
}

/** A picker: HTML listing the corp's members, names escaped; its body. */
function picker (t: Test, page: Page): string {
  const body = html(t, page)
  t.match(body, 'Alice (alice)')
  t.match(body, 'Bob (bob), outside the visible range')
  t.match(body, '&#60;Eve &#38; &#34;co&#34;&#62; (eve)', 'names are escaped')
  t.notMatch(body, '<Eve')
  return body
}

function refusal (t: Test, page: Page, errcode: number): void {
  t.match(html(t, page), `errcode ${errcode}`)
}

t.test('the authorize page', async (t) => {
  t.test('without userid lists the members and outsiders to pick, escaped, each a link to its redirect', async (t) => {
    const sim = await start(t)
    const page = picker(t, await authorize(sim))
    t.match(page, 'WeCom authorization')
    t.match(page, 'Visitor (openid o-wechat-1)')
    const href = /href="([^"]*userid=alice[^"]*)"/.exec(page)![1]!.replaceAll('&#38;', '&')
    const picked = await request(new URL(href, sim.authorizeUrl))
    await picked.body.dump()
    const code = codeOf(t, { status: picked.statusCode, location: picked.headers.location as string })
    t.match(await userInfo(sim, await tokenOf(sim, ACME.corpId, WEB.secret), code), { errcode: 0, userid: 'alice' })
  })

  t.test('with userid redirects at once with code and state; an empty state comes back empty', async (t) => {
    const sim = await start(t)
    codeOf(t, await authorize(sim, { userid: 'alice' }))
    codeOf(t, await authorize(sim, { userid: 'alice', state: undefined }), '')
  })

  t.test('refuses a redirect_uri off the app\'s trusted domains with the 50001 page and no redirect', async (t) => {
    const sim = await start(t)
    refusal(t, await authorize(sim, { userid: 'alice', redirect_uri: 'https://evil.test/back' }), 50001)
    refusal(t, await authorize(sim, { userid: 'alice', redirect_uri: 'http://127.0.0.1:3001/back' }), 50001)
    refusal(t, await authorize(sim, { userid: 'alice', redirect_uri: 'https://other.acme.test/back' }), 50001)
    refusal(t, await authorize(sim, { userid: 'alice', redirect_uri: 'not a url' }), 50001)
    refusal(t, await authorize(sim, { redirect_uri: 'https://evil.test/back' }), 50001)
    t.equal((await authorize(sim, { userid: 'alice', redirect_uri: 'http://127.0.0.1:3000/back' })).status, 302, 'port included')
    t.equal((await authorize(sim, { userid: 'alice', agentid: String(OTHER.agentId), redirect_uri: 'https://other.acme.test/back' })).status, 302)
    t.equal((await authorize(sim, { userid: 'alice', agentid: undefined, redirect_uri: 'https://other.acme.test/back' })).status, 302,
      'without agentid, any web app\'s trusted domain')
  })

  t.test('refuses what WeCom refuses, each with its errcode page', async (t) => {
    const sim = await start(t)
    refusal(t, await authorize(sim, { appid: 'ww-nobody', userid: 'alice' }), 40013)
    refusal(t, await authorize(sim, { response_type: 'token', userid: 'alice' }), 40058)
    refusal(t, await authorize(sim, { scope: 'snsapi_userinfo', userid: 'alice' }), 40058)
    refusal(t, await authorize(sim, { scope: 'snsapi_privateinfo', agentid: undefined, userid: 'alice' }), 40058)
    refusal(t, await authorize(sim, { state: 'x'.repeat(129), userid: 'alice' }), 40058)
    t.equal((await authorize(sim, { state: 'x'.repeat(128), userid: 'alice' })).status, 302, '128 bytes are fine')
    refusal(t, await authorize(sim, { agentid: '1000002', userid: 'alice' }), 40056)
    refusal(t, await authorize(sim, { userid: 'nobody' }), 60111)
    refusal(t, await authorize(sim, { openid: 'o-nobody' }), 40058)
  })
})

t.test('the web login page', async (t) => {
  const sim = await start(t)
  const page = picker(t, await sso(sim))
  t.match(page, 'WeCom QR login')
  t.notMatch(page, 'o-wechat-1', 'members only')
  const code = codeOf(t, await sso(sim, { userid: 'alice', lang: 'en' }), 'S2')
  t.same(await userInfo(sim, await tokenOf(sim, ACME.corpId, WEB.secret), code), { errcode: 0, errmsg: 'ok', userid: 'alice' })
  refusal(t, await sso(sim, { userid: 'alice', redirect_uri: 'https://evil.test/' }), 50001)
  // ServiceApp's appid is a third-party suite's SuiteID: a CorpID is none.
  refusal(t, await sso(sim, { userid: 'alice', login_type: 'ServiceApp' }), 40013)
  refusal(t, await sso(sim, { userid: 'alice', login_type: 'QrApp' }), 40058)
  refusal(t, await sso(sim, { userid: 'alice', agentid: undefined }), 40058)
  refusal(t, await sso(sim, { userid: 'alice', appid: 'ww-nobody' }), 40013)
})

t.test('auth/getuserinfo', async (t) => {
  t.test('answers a member\'s userid, with a user_ticket for snsapi_privateinfo inside the visible range', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME.corpId, WEB.secret)
    t.same(await userInfo(sim, token, codeOf(t, await authorize(sim, { userid: 'alice' }))), { errcode: 0, errmsg: 'ok', userid: 'alice' })
    const privateinfo = await userInfo(sim, token, codeOf(t, await authorize(sim, { userid: 'alice', scope: 'snsapi_privateinfo' })))
    t.match(privateinfo, { errcode: 0, userid: 'alice', user_ticket: String })
    t.ok(Buffer.byteLength(privateinfo.user_ticket as string) <= 512)
    const outside = await userInfo(sim, token, codeOf(t, await authorize(sim, { userid: 'bob', scope: 'snsapi_privateinfo' })))
    t.same(outside, { errcode: 0, errmsg: 'ok', userid: 'bob' }, 'outside the visible range: no user_ticket')
  })

  t.test('answers an outsider\'s openid and external_userid, never a userid', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME.corpId, WEB.secret)
    t.same(await userInfo(sim, token, codeOf(t, await authorize(sim, { openid: 'o-wechat-1' }))), { errcode: 0, errmsg: 'ok', openid: 'o-wechat-1', external_userid: 'wm-ext-1' })
    t.same(await userInfo(sim, token, sim.issueWebCode(ACME.corpId, { openid: 'o-wechat-2' })), { errcode: 0, errmsg: 'ok', openid: 'o-wechat-2' })
  })

  t.test('a code is single use and lives 5 minutes of simulator time', async (t) => {
    let wall = 1_700_000_000_000
    const sim = await start(t, () => wall)
    const token = await tokenOf(sim, ACME.corpId, WEB.secret)
    const code = codeOf(t, await authorize(sim, { userid: 'alice' }))
    t.equal((await userInfo(sim, token, code)).errcode, 0)
    t.equal((await userInfo(sim, token, code)).errcode, 40029, 'spent')
    const late = codeOf(t, await authorize(sim, { userid: 'alice' }))
    const inTime = codeOf(t, await authorize(sim, { userid: 'alice' }))
    sim.advance(299_000)
    t.equal((await userInfo(sim, token, inTime)).errcode, 0)
    wall += 1000
    t.equal((await userInfo(sim, token, late)).errcode, 40029, 'expired')
    t.equal((await userInfo(sim, token, 'made-up')).errcode, 40029)
    t.equal((await get(sim, 'auth/getuserinfo', { access_token: token })).errcode, 41008)
  })

  t.test('takes only the token of the page\'s app (any app of the corp when the page named none)', async (t) => {
    const sim = await start(t)
    const other = await tokenOf(sim, ACME.corpId, OTHER.secret)
    const miniProgram = await tokenOf(sim, ACME.corpId, ACME.secret)
    const globex = await tokenOf(sim, GLOBEX.corpId, GLOBEX.secret)
    t.not(other, await tokenOf(sim, ACME.corpId, WEB.secret), 'a token per app')
    t.equal((await userInfo(sim, other, codeOf(t, await authorize(sim, { userid: 'alice' })))).errcode, 40029, 'another app')
    t.equal((await userInfo(sim, miniProgram, codeOf(t, await authorize(sim, { userid: 'alice' })))).errcode, 40029, 'the mini program\'s app')
    t.equal((await userInfo(sim, globex, codeOf(t, await authorize(sim, { userid: 'alice' })))).errcode, 40029, 'another corp')
    const anyApp = codeOf(t, await authorize(sim, { userid: 'alice', agentid: undefined }))
    t.match(await userInfo(sim, miniProgram, anyApp), { errcode: 0, userid: 'alice' })
  })

  t.test('checks the token first, as the other endpoints do; 60020 is a fault to inject', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME.corpId, WEB.secret)
    const code = sim.issueWebCode(ACME.corpId, { userid: 'alice' }, { agentId: WEB.agentId })
    t.equal((await userInfo(sim, 'made-up', code)).errcode, 40014)
    sim.inject('auth/getuserinfo', { errcode: 60020 })
    t.match(await userInfo(sim, token, code), { errcode: 60020, errmsg: /not allow to access from your ip/ })
    sim.expireTokens(ACME.corpId)
    t.equal((await userInfo(sim, token, code)).errcode, 42001)
    t.equal((await userInfo(sim, await tokenOf(sim, ACME.corpId, WEB.secret), code)).errcode, 0, 'refused calls did not spend the code')
    t.equal(sim.calls['auth/getuserinfo'], 4)
  })
})

t.test('auth/getuserdetail answers the member\'s private fields while the user_ticket lives (1800 s)', async (t) => {
  let wall = 1_700_000_000_000
  const sim = await start(t, () => wall)
  const token = await tokenOf(sim, ACME.corpId, WEB.secret)
  const ticketOf = async (userid: string) => (await userInfo(sim, token, sim.issueWebCode(ACME.corpId, { userid }, { agentId: WEB.agentId, scope: 'snsapi_privateinfo' }))).user_ticket as string
  const ticket = await ticketOf('alice')
  const body = JSON.stringify({ user_ticket: ticket })
  const { name: _name, ...alice } = ACME.members![0]!
  t.same(await userDetail(sim, token, body), { errcode: 0, errmsg: 'ok', ...alice }, 'every field getuserdetail has')
  t.match(await userDetail(sim, token, JSON.stringify({ user_ticket: await ticketOf('eve') })), { errcode: 0, userid: 'eve', gender: '0', mobile: '', email: '' }, 'unset fields are empty')
  t.equal((await userDetail(sim, await tokenOf(sim, ACME.corpId, OTHER.secret), body)).errcode, 40058, 'another app\'s token')
  t.equal((await userDetail(sim, token, JSON.stringify({ user_ticket: 'made-up' }))).errcode, 40058)
  t.equal((await userDetail(sim, token, '{}')).errcode, 40058)
  t.equal((await userDetail(sim, token, 'not json')).errcode, 47001)
  t.equal((await get(sim, 'auth/getuserdetail', { access_token: token })).errcode, 43002)
  sim.advance(1_799_000)
  t.equal((await userDetail(sim, token, body)).errcode, 0, 'used again while it lives')
  wall += 1000
  t.equal((await userDetail(sim, token, body)).errcode, 40058, 'expired')
  t.equal(sim.calls['auth/getuserdetail'], 9)
})

t.test('JS-SDK tickets', async (t) => {
  t.test('the corp ticket and each app\'s agent_config ticket, the same while they live, readable by tests', async (t) => {
    const sim = await start(t, () => 1_700_000_000_000)
    const token = await tokenOf(sim, ACME.corpId, WEB.secret)
    t.equal(sim.jsapiTicket(ACME.corpId), undefined, 'none handed out yet')
    const corp = await get(sim, 'get_jsapi_ticket', { access_token: token })
    t.match(corp, { errcode: 0, errmsg: 'ok', ticket: String, expires_in: 7200 })
    t.same(await get(sim, 'get_jsapi_ticket', { access_token: await tokenOf(sim, ACME.corpId, OTHER.secret) }), corp, 'one per corp')
    t.equal(sim.jsapiTicket(ACME.corpId), corp.ticket)
    const app = await get(sim, 'ticket/get', { access_token: token, type: 'agent_config' })
    t.match(app, { errcode: 0, ticket: String, expires_in: 7200 })
    t.not(app.ticket, corp.ticket)
    t.equal(sim.agentTicket(ACME.corpId, WEB.agentId), app.ticket)
    t.equal(sim.agentTicket(ACME.corpId, OTHER.agentId), undefined, 'one per app')
    t.equal((await get(sim, 'ticket/get', { access_token: token, type: 'jsapi' })).errcode, 40058)
    t.equal((await get(sim, 'get_jsapi_ticket', { access_token: 'made-up' })).errcode, 40014)
    t.same([sim.calls.get_jsapi_ticket, sim.calls['ticket/get']], [3, 2])
    t.same(Object.keys(sim.calls), ['gettoken', 'jscode2session', 'user/get'], 'the login counters alone stay enumerable')
    t.throws(() => sim.jsapiTicket('ww-nobody'), NOT_FOUND)
    t.throws(() => sim.agentTicket(ACME.corpId, 42), NOT_FOUND)
    const signature = jsapiSignature(sim.jsapiTicket(ACME.corpId)!, 'nonce', 1414587457, 'https://app.acme.test/page?x=1#top')
    t.equal(signature, jsapiSignature(corp.ticket as string, 'nonce', '1414587457', 'https://app.acme.test/page?x=1'), 'the # part is not signed')
  })

  t.test('jsapiSignature signs WeCom\'s documented example', async (t) => {
    const ticket = 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg'
    t.equal(jsapiSignature(ticket, 'Wm3WZYTPz0wzccnW', 1414587457, 'http://mp.weixin.qq.com?params=value'), '0f9de62fce790f9a083d5c99e95740ceb90c27ed')
  })

  t.test('hourly limits: 100 per app for each ticket, 400 per corp for the corp ticket; 45009 past them', async (t) => {
    const apps = Array.from({ length: 5 }, (_, i) => ({ agentId: 3000001 + i, secret: `many-secret-${i}-0123456789`, trustedDomains: [] }))
    const sim = await start(t, () => 1_700_000_000_000)
    sim.addCorp({ corpId: 'ww-many', secret: 'many-mp-secret-0123456789', webApps: apps })
    const tokens = await Promise.all(apps.map((app) => tokenOf(sim, 'ww-many', app.secret)))
    const times = async (n: number, path: string, query: Record<string, string>) => {
      const codes: number[] = []
      for (let i = 0; i < n; i++) codes.push((await get(sim, path, query)).errcode)
      return codes
    }
    const hundred = Array(100).fill(0)
    t.same(await times(100, 'ticket/get', { access_token: tokens[0]!, type: 'agent_config' }), hundred)
    t.same(await times(2, 'ticket/get', { access_token: tokens[0]!, type: 'agent_config' }), [45009, 45009], 'the app ticket: 100 an hour')
    t.equal((await get(sim, 'ticket/get', { access_token: tokens[1]!, type: 'agent_config' })).errcode, 0, 'another app has its own')
    for (const token of tokens.slice(0, 3)) t.same(await times(100, 'get_jsapi_ticket', { access_token: token }), hundred)
    t.same(await times(1, 'get_jsapi_ticket', { access_token: tokens[0]! }), [45009], 'the corp ticket: 100 an hour per app')
    t.same(await times(100, 'get_jsapi_ticket', { access_token: tokens[3]! }), hundred)
    t.same(await times(1, 'get_jsapi_ticket', { access_token: tokens[4]! }), [45009], '400 an hour per corp')
    t.equal((await get(sim, 'get_jsapi_ticket', { access_token: await tokenOf(sim, ACME.corpId, WEB.secret) })).errcode, 0, 'another corp is apart')
    sim.advance(3_600_000)
    t.equal((await get(sim, 'get_jsapi_ticket', { access_token: tokens[4]! })).errcode, 0, 'an hour later')
    t.equal((await get(sim, 'ticket/get', { access_token: tokens[0]!, type: 'agent_config' })).errcode, 0)
  })
})

t.test('web apps: a token per app from its own secret; issueWebCode and addCorp check what they are given', async (t) => {
  const sim = await start(t)
  t.equal((await get(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: 'wrong' })).errcode, 40001)
  t.throws(() => sim.issueWebCode(ACME.corpId, { userid: 'alice' }, { agentId: 42 }), NOT_FOUND)
  t.throws(() => sim.issueWebCode(ACME.corpId, { userid: 'nobody' }), NOT_FOUND)
  t.throws(() => sim.issueWebCode(ACME.corpId, { openid: 'o-nobody' }), NOT_FOUND)
  t.throws(() => sim.addCorp({ corpId: 'ww-x', secret: 's', webApps: [{ agentId: 1, secret: 's', trustedDomains: [] }] }), /secret of its own/)
  t.throws(() => sim.addCorp({ corpId: 'ww-x', secret: 's', webApps: [{ agentId: 1000002, secret: 't', trustedDomains: [] }] }), /agentId of its own/)
  t.throws(() => sim.addCorp(JSON.parse('{ "corpId": "ww-x", "secret": "s", "webApps": [{ "agentId": 1, "secret": "t" }] }')), /needs trustedDomains/)
  t.equal(sim.authorizeUrl, `${sim.url}/connect/oauth2/authorize`)
  t.equal(sim.ssoUrl, `${sim.url}/wwlogin/sso/login`)
})
