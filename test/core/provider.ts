import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { CORP_A, CORP_B, setup, simulatorCorps } from '../helpers/setup.js'
import { OTHER, PROVIDER, push, SEAL_KEYS, SUITE, suiteOptions } from '../helpers/suites.js'
import type { AuthorizedCorp } from '../../src/suites/options.js'

// A service provider's corps (issue 19): a corp installs a suite (create_auth), its members log in
// through the suite's mini program, and it uninstalls (cancel_auth): every session of the corp
// ends at once. The simulator plays WeCom and the corps.

/** An app serving suites alone (no corps configured), and the simulator pushing to its callback. */
async function provider (t: Test, hooks: { authorized: AuthorizedCorp[], cancelled: AuthorizedCorp[] } = { authorized: [], cancelled: [] }) {
  const h = await setup(t, {
    ...suiteOptions,
    corps: undefined,
    hooks: { onCorpAuthorized: (corp) => { hooks.authorized.push(corp) }, onCorpCancelled: (corp) => { hooks.cancelled.push(corp) } }
  }, { corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  for (const suite of [SUITE, OTHER]) t.same((await h.sim.pushSuiteTicket(suite.suiteId)).answer, { status: 200, body: 'success' })
  const login = (corpId: string, userid: string, body: Record<string, unknown> = { suiteId: SUITE.suiteId }) =>
    h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(corpId, userid), ...body } })
  const me = (token: string) => h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  const refresh = (refreshToken: string) => h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: refreshToken } })
  return { ...h, hooks, login, me, refresh }
}

t.test('install → login → uninstall: the corp\'s sessions end at once, its logins are refused, its code erased', async (t) => {
  const p = await provider(t)
  t.equal((await p.login(CORP_A, 'zhangsan')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'before the install: 403')

  t.same(await p.sim.install(CORP_A, { suiteId: SUITE.suiteId }), { status: 200, body: 'success' })
  const code = p.sim.permanentCode(CORP_A, { suiteId: SUITE.suiteId })!
  t.ok(code)
  t.same((await p.app.wecom.corps()).map(({ suiteId, corpId }) => ({ suiteId, corpId })), [{ suiteId: SUITE.suiteId, corpId: CORP_A }])
  t.same(p.hooks.authorized.map(({ corpId }) => corpId), [CORP_A], 'onCorpAuthorized')
  t.notOk(JSON.stringify(await p.app.wecom.corps()).includes(code), 'corps() never carries the permanent code')

  const first = await p.login(CORP_A, 'zhangsan')
  t.equal(first.statusCode, 200, first.body)
  const tokens = first.json()
  const user = (await p.me(tokens.access_token)).json()
  t.same(user, { userid: 'zhangsan', corpid: CORP_A, suiteId: SUITE.suiteId }, 'the session carries the suite')
  t.equal((await p.login(CORP_B, 'zhaoliu')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'a corp that has not installed the suite: 403')
  t.equal((await p.login(CORP_A, 'lisi')).json().code, 'WECOM_USER_FORBIDDEN', 'the member check on the corp\'s token')
  t.equal((await p.login(CORP_A, 'zhangsan', { suiteId: 'wwnosuchsuite' })).json().code, 'WECOM_SUITE_UNKNOWN')
  const refreshed = await p.refresh(tokens.refresh_token)
  t.equal(refreshed.statusCode, 200)
  const api = await p.app.wecom.api(CORP_A).get('/cgi-bin/user/get', { userid: 'zhangsan' })
  t.equal(api.userid, 'zhangsan', 'app.wecom.api() on the installed corp\'s token')
  t.equal(p.sim.calls['service/get_corp_token'], 1, 'one corp token for the login, the refresh and api()')

  const untouched = (await p.login(CORP_A, 'zhangsan')).json()
  t.equal(untouched.user.open_userid, p.sim.openUserid(CORP_A, 'zhangsan'), 'the member\'s open_userid, from service/miniprogram/jscode2session')
  // On this instance the refusal is in place once the push is acknowledged: the very next request is refused.
  t.same(await p.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId }), { status: 200, body: 'success' })
  t.equal((await p.me(refreshed.json().access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'the access token of the refresh is refused')
  t.equal((await p.me(tokens.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await p.refresh(refreshed.json().refresh_token)).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no refresh')
  t.equal((await p.login(CORP_A, 'zhangsan')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no login')
  t.same(await p.app.wecom.corps(), [])
  t.same(p.hooks.cancelled.map(({ corpId }) => corpId), [CORP_A], 'onCorpCancelled')
  await t.rejects(p.app.wecom.api(CORP_A).get('/cgi-bin/user/get', { userid: 'zhangsan' }), { code: 'WECOM_CORP_UNKNOWN' })

  // Installed again: a new session works; none of before comes back.
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const again = await p.login(CORP_A, 'zhangsan')
  t.equal(again.statusCode, 200)
  t.equal((await p.me(again.json().access_token)).statusCode, 200)
  t.equal((await p.refresh(refreshed.json().refresh_token)).json().code, 'WECOM_REFRESH_INVALID', 'ended by the refused refresh')
  t.equal((await p.refresh(untouched.refresh_token)).json().code, 'WECOM_CORP_NOT_ALLOWED', 'a session of the former install, never refreshed, stays ended')

  const logged = p.logs.lines.join('\n')
  for (const secret of [code, p.sim.permanentCode(CORP_A, { suiteId: SUITE.suiteId })!, SUITE.secret, ...SEAL_KEYS, ...p.sim.suiteTickets(SUITE.suiteId).map(({ ticket }) => ticket)]) {
    t.notOk(logged.includes(secret), 'no permanent code, suite secret, seal key or ticket in a log line')
  }
})

t.test('a 代开发 suite: the corp names itself; the code is exchanged on the corp\'s 代开发 token; a reset code takes over', async (t) => {
  const p = await provider(t)
  await p.sim.install(CORP_B, { suiteId: OTHER.suiteId })
  const ok = await p.login(CORP_B, 'zhaoliu', { suiteId: OTHER.suiteId, corpId: CORP_B })
  t.equal(ok.statusCode, 200, ok.body)
  t.same((await p.me(ok.json().access_token)).json(), { userid: 'zhaoliu', corpid: CORP_B, suiteId: OTHER.suiteId })
  t.equal(p.sim.calls.gettoken, 1, 'gettoken with the permanent code as the secret')
  t.equal(p.sim.calls['service/get_corp_token'], 0)
  t.equal((await p.login(CORP_B, 'zhaoliu', { suiteId: OTHER.suiteId })).json().code, 'WECOM_INVALID_ARGUMENT', 'no corpId: 400')
  t.equal((await p.login(CORP_A, 'zhangsan', { suiteId: OTHER.suiteId, corpId: CORP_A })).json().code, 'WECOM_CORP_NOT_ALLOWED')

  const before = p.sim.permanentCode(CORP_B, { suiteId: OTHER.suiteId })
  t.same(await p.sim.resetPermanentCode(CORP_B, { suiteId: OTHER.suiteId }), { status: 200, body: 'success' })
  t.not(p.sim.permanentCode(CORP_B, { suiteId: OTHER.suiteId }), before)
  const refreshed = await p.refresh(ok.json().refresh_token)
  t.equal(refreshed.statusCode, 200, 'the sessions live on through a new code')
  t.equal((await p.app.wecom.api(CORP_B).get('/cgi-bin/user/get', { userid: 'zhaoliu' })).userid, 'zhaoliu')
  t.equal(p.sim.calls.gettoken, 2, 'the old code\'s token forgotten, the new code\'s fetched')
})

t.test('pushes: each acted on once; a contact change of an installed corp off-boards its member', async (t) => {
  const p = await provider(t)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const session = (await p.login(CORP_A, 'zhangsan')).json()
  const change = { InfoType: 'change_contact', ChangeType: 'delete_user', UserID: 'zhangsan', AuthCorpId: CORP_A }
  t.same(await p.sim.pushSuite(SUITE.suiteId, change), { status: 200, body: 'success' })
  t.equal((await p.me(session.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'the member is off-boarded')
  const foreign = await p.sim.pushSuite(SUITE.suiteId, { ...change, AuthCorpId: CORP_B })
  t.equal(foreign?.status, 403, 'a corp that has not installed the suite: refused')

  const cancel = { InfoType: 'cancel_auth', AuthCorpId: CORP_A, TimeStamp: Math.floor(Date.now() / 1000) }
  t.same(await p.sim.pushSuite(SUITE.suiteId, cancel), { status: 200, body: 'success' })
  t.same(await p.sim.pushSuite(SUITE.suiteId, cancel), { status: 200, body: 'success' }, 'the same push again')
  t.equal(p.logs.records.filter((r) => r.msg === 'wecom: corp uninstalled the suite; its sessions ended').length, 1, 'acted on once')
  const refused = await p.sim.pushSuite(SUITE.suiteId, { InfoType: 'create_auth', AuthCode: 'spent-or-forged' })
  t.ok(refused !== undefined && refused.status >= 500, 'an AuthCode WeCom refuses (40078): not acknowledged, WeCom resends')
  t.notOk(refused?.body.includes('spent-or-forged'), 'nor written back')
  t.equal((await p.sim.pushSuite(SUITE.suiteId, { InfoType: 'create_auth' }))?.status, 400, 'no AuthCode')
})

t.test('timed suite_ticket pushes lost, late, twice and out of order: never an older ticket kept, and logins recover by themselves', async (t) => {
  // 0.25 s between pushes rather than WeCom's 10 minutes; each wait below is for a push seen, not for a time.
  const h = await setup(t, { ...suiteOptions, corps: undefined }, { corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER], suiteTicketEvery: 0.25 })
  h.sim.planSuiteTickets(['lost', 'lost', 'lost'], { suiteId: SUITE.suiteId })
  h.sim.planSuiteTickets(['out-of-order', 'twice', 'late', 'out-of-order', 'lost', 'twice'], { suiteId: SUITE.suiteId })
  t.throws(() => h.sim.planSuiteTickets(['sometimes' as 'lost'], { suiteId: SUITE.suiteId }), /no suite_ticket fate "sometimes"/)
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  const login = () => h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan'), suiteId: SUITE.suiteId } })
  const tickets = () => h.sim.suiteTickets(SUITE.suiteId)
  const until = async (what: string, done: () => boolean) => {
    // 30 s: pushes come every 0.25 s; only a stalled machine takes longer.
    for (const started = Date.now(); !done(); await sleep(20)) if (Date.now() - started > 30_000) throw new Error(`waited 30 s for ${what}`)
  }

  t.equal(tickets().length, 0, 'the first three pushes lost')
  const fresh = await login()
  t.equal(fresh.statusCode, 503, 'no ticket yet: 503')
  t.equal(fresh.json().code, 'WECOM_UNAVAILABLE')
  await until('the first ticket', () => tickets().length > 0)
  t.same((await h.sim.install(CORP_A, { suiteId: SUITE.suiteId })), { status: 200, body: 'success' })
  t.equal((await login()).statusCode, 200, 'logins recover once a push arrives, with nothing restarted')

  // Six fates, out of order twice: at least 8 pushes delivered, then a few more on time.
  await until('the planned pushes', () => tickets().length >= 11)
  const records = h.logs.records.filter((r) => 'kept' in r && r.suiteId === SUITE.suiteId)
  let newest = 0
  for (const record of records) {
    const stamp = record.timestamp as number
    t.equal(record.kept, stamp >= newest, `a push dated ${stamp} after the newest kept, ${newest}: kept only if not older`)
    if (record.kept === true) newest = stamp
  }
  t.ok(records.some((r) => r.kept === false), 'an out-of-order push came, and was not kept')
  const stamps = tickets().map(({ timestamp }) => timestamp)
  t.not(stamps.join(), [...stamps].sort((a, b) => a - b).join(), 'the simulator did reorder its pushes')
  t.equal(newest, Math.max(...stamps), 'the newest pushed is the one kept')
  t.equal((await login()).statusCode, 200)

  // An uninstalled corp's token stops working at WeCom too.
  const token = await h.app.wecom.accessToken(CORP_A)
  await h.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId })
  const answer = await (await fetch(`${h.sim.url}/cgi-bin/user/get?access_token=${token}&userid=zhangsan`)).json() as { errcode: number }
  t.equal(answer.errcode, 40014, 'the corp token of the uninstalled suite: refused by the simulator')
})

t.test('the suite\'s 数据回调: an installed corp\'s contact events, encrypted for its corpid, off-board its members; any other corp\'s are refused', async (t) => {
  const p = await provider(t)
  await p.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  const zhangsan = (await p.login(CORP_A, 'zhangsan')).json()
  const wangwu = await p.login(CORP_A, 'wangwu')
  t.equal(wangwu.json().code, 'WECOM_USER_FORBIDDEN', 'wangwu is disabled in the simulator; enable him for the test')
  p.sim.updateMember(CORP_A, 'wangwu', { status: 1 })
  const other = (await p.login(CORP_A, 'wangwu')).json()

  // As WeCom does: the member removed in the corp, the event to the suite's URL for the corp's corpid.
  await p.sim.removeMember(CORP_A, 'zhangsan')
  t.equal((await p.me(zhangsan.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'off-boarded by the data callback')
  t.equal((await p.me(other.access_token)).statusCode, 200, 'the corp\'s other members keep theirs')
  await p.sim.disableMember(CORP_A, 'wangwu')
  t.equal((await p.me(other.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'a member disabled: off-boarded too')

  const post = async (receiver: string, fields: Record<string, string | number>) => ({ status: (await p.app.inject(push(SUITE, fields, receiver))).statusCode })
  const event = (corpId: string) => ({ ToUserName: corpId, FromUserName: 'sys', CreateTime: Math.floor(Date.now() / 1000), MsgType: 'event', Event: 'change_contact', ChangeType: 'delete_user', UserID: 'zhaoliu' })
  t.equal((await post(CORP_B, event(CORP_B))).status, 403, 'a corp that has not installed the suite')
  t.equal((await post(PROVIDER, event(PROVIDER))).status, 403, 'the provider\'s CorpID is the URL check\'s receiver only')
  t.equal((await post(OTHER.suiteId, event(OTHER.suiteId))).status, 403, 'another suite\'s id is no corp\'s')
  t.equal((await post(CORP_A, event(CORP_B))).status, 403, 'ToUserName must be the receiver')
  const { CreateTime: _none, ...undated } = event(CORP_A)
  t.equal((await post(CORP_A, undated)).status, 400, 'no CreateTime')
  t.equal((await post(CORP_A, event(CORP_A))).status, 200)
})
