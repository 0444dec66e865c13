import { getSignature } from '@wecom/crypto'
import t, { type Test } from 'tap'
import type { WecomEvent } from '../../src/index.js'
import { callbackSignature, encryptCallbackMessage, eventXml } from '../../src/testing/envelope.js'
import type { WecomSimulatorOptions } from '../../src/testing/simulator.js'
import {
  KEY_A, KEY_B, TOKEN_A, TOKEN_B, callbackCorps, connect, deleteUserXml, openIndependently, post, postEncrypted
} from '../helpers/callback.js'
import { eventually } from '../helpers/redis.js'
import { CORP_A, CORP_B, setup } from '../helpers/setup.js'

/**
 * An app whose two corps have callbacks, listening, with the simulator's callbacks saved to it.
 * `onEvent` runs after each call is recorded in `events`.
 */
async function harness (t: Test, onEvent?: (event: WecomEvent) => Promise<void>, simOptions: WecomSimulatorOptions = {}) {
  const events: WecomEvent[] = []
  const revoked: string[] = []
  const h = await setup(t, {
    corps: callbackCorps(),
    onEvent: async (event) => {
      events.push(event)
      await onEvent?.(event)
    },
    hooks: { onRevoke: async (member) => { revoked.push(`${member?.corpid}/${member?.userid}`) } }
  }, simOptions)
  await connect(h.app, h.sim)
  const session = async (userid: string, corpId = CORP_A) => (await h.login(userid, corpId, { corpId })).json()
  const me = async (accessToken: string) => (await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${accessToken}` } })).statusCode
  const refresh = async (refreshToken: string) => (await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: refreshToken } })).statusCode
  return { ...h, events, revoked, session, me, refresh }
}

const now = () => Math.floor(Date.now() / 1000)

t.test('the simulator\'s ciphertext is WeCom\'s layout, and the plugin\'s package reads the same signature', async (t) => {
  const encrypted = encryptCallbackMessage(KEY_A, 'hello 企业微信', CORP_A)
  const opened = openIndependently(KEY_A, encrypted)
  t.same({ message: opened.message, receiveId: opened.receiveId }, { message: 'hello 企业微信', receiveId: CORP_A })
  t.ok(opened.padding >= 1 && opened.padding <= 32, 'padded to 32-byte blocks')
  t.equal(Buffer.from(encrypted, 'base64').length % 32, 0)
  t.equal(callbackSignature(TOKEN_A, '1409659813', 'nonce', encrypted), getSignature(TOKEN_A, '1409659813', 'nonce', encrypted))
})

t.test('URL check: WeCom\'s GET is answered with the plain echostr, for each corp on one URL', async (t) => {
  const h = await harness(t)
  t.pass('both corps saved their callback: the simulator checked the URL')
  const timestamp = String(now())
  const encrypted = encryptCallbackMessage(KEY_B, 'echo-of-corp-b', CORP_B)
  const res = await h.app.inject({
    url: '/wecom/callback',
    query: { msg_signature: callbackSignature(TOKEN_B, timestamp, 'n1', encrypted), timestamp, nonce: 'n1', echostr: encrypted }
  })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'echo-of-corp-b')
  const forged = await h.app.inject({
    url: '/wecom/callback',
    query: { msg_signature: callbackSignature('another-token', timestamp, 'n1', encrypted), timestamp, nonce: 'n1', echostr: encrypted }
  })
  t.equal(forged.statusCode, 403)
  t.equal(forged.json().code, 'WECOM_CALLBACK_FORBIDDEN')

  // A delivery's Encrypt replayed as an echostr, with the delivery's own signature: no decryption oracle.
  const event = encryptCallbackMessage(KEY_B, '<xml><ToUserName><![CDATA[wwb]]></ToUserName><Event>change_contact</Event></xml>', CORP_B)
  const replayed = await h.app.inject({
    url: '/wecom/callback',
    query: { msg_signature: callbackSignature(TOKEN_B, timestamp, 'n2', event), timestamp, nonce: 'n2', echostr: event }
  })
  t.equal(replayed.statusCode, 403)
  t.notMatch(replayed.body, /change_contact/, 'the event is not answered decrypted')
})

t.test('a member deleted in WeCom: every token and the refresh end, once, with the event and a log line', async (t) => {
  const h = await harness(t)
  const first = await h.session('zhangsan')
  const second = await h.session('zhangsan')
  const other = await h.session('zhaoliu', CORP_B)
  const delivery = await h.sim.removeMember(CORP_A, 'zhangsan')
  t.equal(delivery?.acknowledged, true, 'answered success')
  for (const s of [first, second]) {
    t.equal(await h.me(s.access_token), 401)
    t.equal(await h.refresh(s.refresh_token), 401)
  }
  t.equal(await h.me(other.access_token), 200, 'another corp\'s member is untouched')
  t.same(h.revoked, [`${CORP_A}/zhangsan`])
  t.equal(h.events.length, 1)
  t.match(h.events[0], { ToUserName: CORP_A, Event: 'change_contact', ChangeType: 'delete_user', UserID: 'zhangsan' })
  const line = h.logs.records.find((r) => r.action === 'revokeUser')
  t.match(line, { level: 30, corpId: CORP_A, userid: 'zhangsan', event: 'change_contact/delete_user' })

  // WeCom resends: the same envelope, a new one. Answered success, no second effect.
  for (const envelope of ['same', 'new'] as const) {
    const again = await h.sim.redeliver(delivery!, envelope)
    t.same(again, { status: 200, body: 'success' }, `resent in the ${envelope} envelope`)
  }
  t.equal(h.revoked.length, 1, 'one revocation')
  t.equal(h.events.length, 1, 'onEvent once')
})

t.test('no resend or replay ends a session made after the event', async (t) => {
  const h = await harness(t)
  const before = await h.session('zhangsan')
  const createTime = now() - 2
  const replay = deleteUserXml('zhangsan', createTime)
  // A delayed event: the session made after its CreateTime lives on, token and refresh.
  await new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() % 1000)))
  t.equal((await post(h.app, CORP_A, deleteUserXml('zhangsan', createTime - 60))).body, 'success')
  t.equal(await h.me(before.access_token), 200, 'a session made after the event is not ended by it')
  t.equal(await h.refresh(before.refresh_token), 200)

  const after = await h.session('zhangsan')
  t.equal((await post(h.app, CORP_A, replay)).body, 'success')
  t.equal((await post(h.app, CORP_A, replay)).body, 'success', 'replayed in a new envelope')
  t.equal(await h.me(after.access_token), 200)
  t.equal(await h.refresh(after.refresh_token), 200)
  t.equal(h.revoked.length, 2, 'two distinct events, each once')
})

/** A second boundary passed: what is made now comes after any event of an earlier CreateTime second. */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() % 1000)))

/** WeCom's resend after 50 ms rather than 5 s: each test waits for one or two. */
const fastResends = { callbackRetryDelay: 50 }

t.test('removed, restored and removed again within one second: two events, the second ends the session made between', async (t) => {
  const h = await harness(t)
  const member = h.sim.members(CORP_A).find((m) => m.userid === 'zhangsan')!
  // Just past a second boundary, so that all of it most likely falls within one second.
  await nextSecond()
  const first = await h.sim.removeMember(CORP_A, 'zhangsan')
  h.sim.setMember(CORP_A, member)
  const s = await h.session('zhangsan')
  const second = await h.sim.removeMember(CORP_A, 'zhangsan')
  t.not(second?.event.CreateTime, first?.event.CreateTime, 'each event has a second of its own, as WeCom tells a resend by its fields')
  t.equal(second?.acknowledged, true)
  t.equal(await h.me(s.access_token), 401, 'the second removal ended the session made after the first')
  t.equal(await h.refresh(s.refresh_token), 401)
  t.equal(h.events.length, 2)
})

t.test('onEvent failing once: not acknowledged; WeCom\'s resend runs it again, once per success', async (t) => {
  let failures = 1
  const h = await harness(t, async () => { if (failures-- > 0) throw new Error('the host\'s queue is down') }, fastResends)
  const s = await h.session('zhangsan')
  const delivery = await h.sim.removeMember(CORP_A, 'zhangsan')
  t.equal(delivery?.acknowledged, false, 'the first POST is not acknowledged')
  t.ok(await eventually(5000, async () => delivery?.acknowledged === true), 'WeCom\'s resend is')
  t.equal(delivery?.attempts, 2)
  t.equal(h.events.length, 2, 'onEvent ran again on the resend')
  t.equal(await h.me(s.access_token), 401)
  t.equal(await h.refresh(s.refresh_token), 401)
  const line = h.logs.records.find((r) => /onEvent failed/.test(String(r.msg)))
  t.match(line, { level: 50, corpId: CORP_A, event: 'change_contact/delete_user', msg: /not acknowledged, WeCom's resend will retry it/ })

  t.same(await h.sim.redeliver(delivery!, 'new'), { status: 200, body: 'success' }, 'a resend after the success')
  t.equal(h.events.length, 2, 'reaches onEvent no more')
})

t.test('a retry after onEvent failed ends what the event ended, and no session made after it', async (t) => {
  let failures = 1
  const h = await harness(t, async () => { if (failures-- > 0) throw new Error('the host\'s queue is down') })
  const before = await h.session('zhangsan')
  const xml = deleteUserXml('zhangsan')
  const first = await post(h.app, CORP_A, xml)
  t.equal(first.statusCode, 503, 'not acknowledged')
  t.match(first.json(), { code: 'WECOM_CALLBACK_RETRY', message: /onEvent failed/ })
  t.equal(first.headers['retry-after'], '5')
  t.notMatch(first.body, /queue is down/, 'the host\'s error stays in the log')
  t.equal(await h.me(before.access_token), 401, 'the off-boarding ran before onEvent failed')

  await nextSecond()
  const after = await h.session('zhangsan')
  t.equal((await post(h.app, CORP_A, xml)).body, 'success', 'WeCom\'s resend, in a new envelope')
  t.equal(await h.me(after.access_token), 200, 'the session made after the event lives on')
  t.equal(await h.refresh(after.refresh_token), 200)
  t.equal(await h.refresh(before.refresh_token), 401)
  t.equal(h.events.length, 2)
  t.same(h.revoked, [`${CORP_A}/zhangsan`, `${CORP_A}/zhangsan`], 'the same off-boarding, run again')
})

t.test('the recheck cannot reach WeCom: not acknowledged; the resend with WeCom back acts', async (t) => {
  const h = await harness(t, undefined, fastResends)
  const moved = await h.session('zhangsan')
  h.sim.updateMember(CORP_A, 'zhangsan', { visible: false })
  h.sim.inject('user/get', { drop: true })
  const delivery = await h.sim.sendEvent(CORP_A, { Event: 'change_contact', ChangeType: 'update_user', UserID: 'zhangsan', Department: '7' })
  t.equal(delivery.acknowledged, false, 'WeCom unreachable: the first POST is not acknowledged')
  t.ok(await eventually(5000, async () => delivery.acknowledged), 'the resend is')
  t.equal(delivery.attempts, 2)
  t.equal(await h.me(moved.access_token), 401, 'and the member out of range lost the sessions')
  t.equal(h.events.length, 1, 'onEvent once, after the recheck')
  const line = h.logs.records.find((r) => r.action === 'recheck' && r.level === 40)
  t.match(line, { userid: 'zhangsan', msg: /not acknowledged, WeCom's resend will retry it/ })
})

t.test('disabled, out of the visible range, renamed: sessions end; other events reach onEvent only', async (t) => {
  const h = await harness(t)
  const disabled = await h.session('zhangsan')
  await h.sim.disableMember(CORP_A, 'zhangsan')
  t.equal(await h.me(disabled.access_token), 401)
  t.equal(await h.refresh(disabled.refresh_token), 401)
  t.equal((await h.login('zhangsan')).statusCode, 403, 'and WeCom refuses the next login')

  const hidden = await h.session('zhaoliu', CORP_B)
  const delivery = await h.sim.setVisible(CORP_B, 'zhaoliu', false)
  t.match(delivery?.event, { Event: 'unsubscribe', FromUserName: 'zhaoliu' })
  t.equal(await h.me(hidden.access_token), 401, 'unsubscribe: out of the visible range')
  t.equal(await h.refresh(hidden.refresh_token), 401)

  h.sim.setMember(CORP_A, { userid: 'oldname' })
  const renamed = await h.session('oldname')
  await h.sim.sendEvent(CORP_A, { Event: 'change_contact', ChangeType: 'update_user', UserID: 'oldname', NewUserID: 'newname' })
  t.equal(await h.me(renamed.access_token), 401, 'the old userid\'s sessions end')

  await h.sim.sendEvent(CORP_A, { Event: 'change_contact', ChangeType: 'update_user', UserID: 'lisi', Status: 1, Position: 'lead' })
  await h.sim.sendEvent(CORP_A, { Event: 'change_contact', ChangeType: 'create_party', Id: 3 })
  t.equal(h.events.length, 5, 'every event reached onEvent')
  t.equal(h.revoked.length, 3, 'only the three off-boardings revoked')
})

t.test('a change of departments asks WeCom: a member now out of range loses the sessions', async (t) => {
  const h = await harness(t)
  const moved = await h.session('zhangsan')
  h.sim.updateMember(CORP_A, 'zhangsan', { visible: false })
  await h.sim.sendEvent(CORP_A, { Event: 'change_contact', ChangeType: 'update_user', UserID: 'zhangsan', Department: '7' })
  t.equal(await h.me(moved.access_token), 401)
  const stays = await h.session('zhaoliu', CORP_B)
  await h.sim.sendEvent(CORP_B, { Event: 'change_contact', ChangeType: 'update_user', UserID: 'zhaoliu', Department: '2' })
  t.equal(await h.me(stays.access_token), 200, 'still in range: kept')
})

t.test('every refusal is a 4xx with no side effect', async (t) => {
  const h = await harness(t)
  const s = await h.session('zhangsan')
  const xml = deleteUserXml('zhangsan')
  const encrypted = encryptCallbackMessage(KEY_A, xml, CORP_A)
  const cases: Array<[string, () => ReturnType<typeof post>, number]> = [
    ['a signature by another token', () => post(h.app, CORP_A, xml, { token: 'not-the-token' }), 403],
    ['a signature that is not hex', () => post(h.app, CORP_A, xml, { signature: 'x'.repeat(40) }), 400],
    ['a timestamp ten minutes old', () => post(h.app, CORP_A, xml, { timestamp: now() - 600 }), 403],
    ['a timestamp ten minutes ahead', () => post(h.app, CORP_A, xml, { timestamp: now() + 600 }), 403],
    ['a ciphertext under another key', () => post(h.app, CORP_A, xml, { key: KEY_B }), 403],
    ['a ciphertext cut and patched (signed, but not WeCom\'s)', () => postEncrypted(h.app, CORP_A, encrypted.slice(0, -8) + 'AAAAAAA='), 400],
    ['a ciphertext that is not whole blocks', () => postEncrypted(h.app, CORP_A, encrypted.slice(0, -4)), 400],
    ['a receiver that is another corp', () => post(h.app, CORP_A, xml, { receiveId: CORP_B }), 403],
    ['an event addressed to another corp', () => post(h.app, CORP_A, deleteUserXml('zhangsan', now(), CORP_B)), 403],
    ['a decrypted body that is not XML', () => post(h.app, CORP_A, 'not <xml'), 400],
    ['an event without CreateTime', () => post(h.app, CORP_A, eventXml({ ToUserName: CORP_A, Event: 'change_contact', ChangeType: 'delete_user', UserID: 'zhangsan' })), 400],
    ['an envelope that is not XML', () => postEncrypted(h.app, CORP_A, encrypted, {}, '{"Encrypt": 1}'), 400],
    ['an envelope without Encrypt', () => postEncrypted(h.app, CORP_A, encrypted, {}, '<xml><ToUserName>x</ToUserName></xml>'), 400],
    ['a body over the limit', () => postEncrypted(h.app, CORP_A, encrypted, {}, `<xml><Encrypt>${'A'.repeat(40_000)}</Encrypt></xml>`), 413],
    ['no signature at all', () => h.app.inject({ method: 'POST', url: '/wecom/callback', payload: '<xml/>', headers: { 'content-type': 'text/xml' } }), 400]
  ]
  for (const [what, send, status] of cases) {
    const res = await send()
    t.equal(res.statusCode, status, what)
    t.notMatch(res.body, new RegExp(`${TOKEN_A}|${KEY_A}|zhangsan`), `${what}: the answer names nothing sent`)
  }
  t.equal(await h.me(s.access_token), 200, 'the member\'s token still passes')
  t.equal(await h.refresh(s.refresh_token), 200)
  t.same(h.events, [], 'onEvent never called')
})

t.test('a value holding \']]>\' reaches onEvent whole, posted by hand or sent by the simulator', async (t) => {
  const h = await harness(t)
  const position = 'lead ]]> <b>manager</b> ]]]]>'
  const fields = { Event: 'change_contact', ChangeType: 'update_user', Position: position }
  const xml = eventXml({ ToUserName: CORP_A, FromUserName: 'sys', CreateTime: now(), MsgType: 'event', ...fields, UserID: 'lisi' })
  t.equal((await post(h.app, CORP_A, xml)).body, 'success', 'a CDATA section cannot hold \']]>\': it is split across two')
  // Another member: the same event twice would be one delivery, handled once.
  t.equal((await h.sim.sendEvent(CORP_A, { ...fields, UserID: 'wangwu' })).acknowledged, true)
  t.same(h.events.map((event) => event.Position), [position, position])
})

t.test('entities are not expanded', async (t) => {
  const h = await harness(t)
  const s = await h.session('zhangsan')
  const xml = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY who "zhangsan">]>${eventXml({
    ToUserName: CORP_A, CreateTime: now(), MsgType: 'event', Event: 'change_contact', ChangeType: 'delete_user'
  }).replace('</xml>', '<UserID>&who;</UserID></xml>')}`
  const res = await post(h.app, CORP_A, xml)
  t.ok(res.statusCode === 200 || res.statusCode === 400, `answered ${res.statusCode}`)
  t.equal(await h.me(s.access_token), 200, 'no entity became a userid')
})

t.test('the callback route exists only when a corp has a callback; several corps are told apart by their Token and key', async (t) => {
  const plain = await setup(t)
  t.equal((await plain.app.inject({ method: 'POST', url: '/wecom/callback', payload: '<xml/>' })).statusCode, 404)
  const h = await harness(t)
  const b = await h.session('zhaoliu', CORP_B)
  const res = await post(h.app, CORP_B, deleteUserXml('zhaoliu', now(), CORP_B), { token: TOKEN_B, key: KEY_B })
  t.equal(res.body, 'success')
  t.equal(await h.me(b.access_token), 401)
})

t.test('a simulator resends an event that got no success, and stops', async (t) => {
  const h = await setup(t, { corps: callbackCorps() }, { callbackRetryDelay: 50 })
  const url = await connect(h.app, h.sim)
  await h.app.close()
  const delivery = await h.sim.removeMember(CORP_A, 'zhangsan')
  // Four refused connections 50 ms apart: well within 5 s however loaded the machine.
  t.ok(await eventually(5000, async () => delivery?.attempts === 4), 'the first POST and three resends')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(delivery?.attempts, 4, 'and no more')
  t.equal(delivery?.acknowledged, false)
  t.ok(url.endsWith('/wecom/callback'))
})
