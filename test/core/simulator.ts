import { createDecipheriv } from 'node:crypto'
import { Agent, get as httpGet } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import {
  createWecomSimulator,
  encryptWithSessionKey,
  isSimulatorNotFound,
  SimulatorNotFoundError,
  type WecomSimulator,
  type WecomSimulatorOptions,
} from '../../src/testing/simulator.js'
import { eventually } from '../helpers/redis.js'

const ACME = { corpId: 'ww-acme', secret: 'acme-secret-0123456789' }
const GLOBEX = { corpId: 'ww-globex', secret: 'globex-secret-0123456789' }

const PATH = {
  gettoken: '/cgi-bin/gettoken',
  jscode2session: '/cgi-bin/miniprogram/jscode2session',
  'user/get': '/cgi-bin/user/get',
} as const

type Answer = Record<string, unknown> & { errcode: number; errmsg: string }

async function start (t: Test, options: WecomSimulatorOptions = {}): Promise<WecomSimulator> {
  const sim = await createWecomSimulator({
    corps: [
      {
        ...ACME,
        members: [
          { userid: 'alice', name: 'Alice', department: [1, 2], position: 'Engineer' },
          { userid: 'bob' },
          { userid: 'hidden', name: 'Hidden', visible: false },
          { userid: 'carol', name: 'Carol', mobile: '13800000000', email: 'carol@acme.test' },
        ],
      },
      { ...GLOBEX, members: [{ userid: 'gina', name: 'Gina' }] },
    ],
    ...options,
  })
  t.teardown(() => sim.close())
  return sim
}

async function call (
  sim: WecomSimulator,
  endpoint: keyof typeof PATH,
  query: Record<string, string>
): Promise<Answer> {
  const res = await request(`${sim.url}${PATH[endpoint]}?${new URLSearchParams(query)}`)
  // WeCom never signals errors through the HTTP status.
  if (res.statusCode !== 200) throw new Error(`unexpected HTTP ${res.statusCode}`)
  return (await res.body.json()) as Answer
}

async function tokenOf (sim: WecomSimulator, corp: { corpId: string; secret: string }) {
  const answer = await call(sim, 'gettoken', { corpid: corp.corpId, corpsecret: corp.secret })
  if (answer.errcode !== 0) throw new Error(`gettoken failed: ${answer.errcode}`)
  return answer.access_token as string
}

function exchange (sim: WecomSimulator, token: string, code: string): Promise<Answer> {
  return call(sim, 'jscode2session', {
    access_token: token,
    js_code: code,
    grant_type: 'authorization_code',
  })
}

t.test('gettoken', async (t) => {
  t.test('hands back the same token while it lives, then a new one', async (t) => {
    // A frozen clock, so that no real millisecond slips into expires_in.
    const sim = await start(t, { tokenTtl: 7200, now: () => 1_700_000_000_000 })
    const first = await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: ACME.secret })
    t.equal(first.errcode, 0)
    t.equal(first.errmsg, 'ok')
    t.equal(first.expires_in, 7200)
    const token = first.access_token as string
    t.ok(token.length >= 32, 'long enough to be unguessable')
    t.notOk(token.includes(ACME.secret), 'reveals nothing of the secret')

    sim.advance(1000 * 1000)
    const again = await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: ACME.secret })
    t.equal(again.access_token, token)
    t.equal(again.expires_in, 6200, 'the remaining life, not a fresh one')

    sim.advance(6200 * 1000)
    const renewed = await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: ACME.secret })
    t.not(renewed.access_token, token)
    t.equal(renewed.expires_in, 7200)
  })

  t.test('keeps one token per corp', async (t) => {
    const sim = await start(t)
    t.not(await tokenOf(sim, ACME), await tokenOf(sim, GLOBEX))
  })

  t.test('setTokenTtl applies to tokens issued afterwards', async (t) => {
    const sim = await start(t)
    sim.setTokenTtl(60)
    const answer = await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: ACME.secret })
    t.equal(answer.expires_in, 60)
  })

  t.test('refuses an unknown corp with 40013 and a wrong secret with 40001', async (t) => {
    const sim = await start(t)
    t.equal((await call(sim, 'gettoken', { corpid: 'ww-nope', corpsecret: ACME.secret })).errcode, 40013)
    t.equal((await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: 'wrong' })).errcode, 40001)
    t.equal((await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: GLOBEX.secret })).errcode, 40001)
  })
})

t.test('jscode2session', async (t) => {
  t.test('exchanges a code once for corpid, userid and session_key', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    const code = sim.issueCode(ACME.corpId, 'alice')
    const answer = await exchange(sim, token, code)
    t.same(answer, {
      errcode: 0,
      errmsg: 'ok',
      corpid: ACME.corpId,
      userid: 'alice',
      session_key: sim.sessionKey(ACME.corpId, 'alice'),
    })
    t.notOk('deviceid' in answer, 'WeCom sends no deviceid')
    t.equal((await exchange(sim, token, code)).errcode, 40029, 'a code is single use')
  })

  t.test('gives each code a new session_key', async (t) => {
    const sim = await start(t)
    sim.issueCode(ACME.corpId, 'alice')
    const first = sim.sessionKey(ACME.corpId, 'alice')
    sim.issueCode(ACME.corpId, 'alice')
    const second = sim.sessionKey(ACME.corpId, 'alice')
    t.not(first, second)
    t.equal(Buffer.from(second ?? '', 'base64').length, 16)
    t.equal(sim.sessionKey(ACME.corpId, 'bob'), undefined)
  })

  t.test('expires codes after codeTtl of simulator time', async (t) => {
    const sim = await start(t, { codeTtl: 300 })
    const token = await tokenOf(sim, ACME)
    const young = sim.issueCode(ACME.corpId, 'alice')
    const old = sim.issueCode(ACME.corpId, 'alice')
    sim.advance(299_000)
    t.equal((await exchange(sim, token, young)).errcode, 0)
    sim.advance(1000)
    t.equal((await exchange(sim, token, old)).errcode, 40029)
  })

  t.test('follows the injected clock', async (t) => {
    let clock = 1_700_000_000_000
    const sim = await start(t, { now: () => clock, codeTtl: 10 })
    const token = await tokenOf(sim, ACME)
    const code = sim.issueCode(ACME.corpId, 'alice')
    clock += 10_000
    t.equal((await exchange(sim, token, code)).errcode, 40029)
  })

  t.test('answers for the code’s corp whichever corp’s token is used, and spends the code', async (t) => {
    const sim = await start(t)
    const acmeToken = await tokenOf(sim, ACME)
    const code = sim.issueCode(GLOBEX.corpId, 'gina')
    const answer = await exchange(sim, acmeToken, code)
    t.equal(answer.errcode, 0)
    t.equal(answer.corpid, GLOBEX.corpId, 'the server spots the mismatch by comparing corpid')
    t.equal(answer.userid, 'gina')
    const globexToken = await tokenOf(sim, GLOBEX)
    t.equal((await exchange(sim, globexToken, code)).errcode, 40029, 'the client needs a new code')
  })

  t.test('checks the token, then the code', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    const code = sim.issueCode(ACME.corpId, 'alice')
    t.equal((await call(sim, 'jscode2session', { js_code: code, grant_type: 'authorization_code' })).errcode, 40014)
    t.equal((await exchange(sim, 'not-a-token', code)).errcode, 40014)
    t.equal((await call(sim, 'jscode2session', { access_token: token, grant_type: 'authorization_code' })).errcode, 41008)
    t.equal((await call(sim, 'jscode2session', { access_token: token, js_code: code })).errcode, 40002)
    t.equal((await exchange(sim, token, 'never-issued')).errcode, 40029)
    t.equal((await exchange(sim, token, code)).errcode, 0, 'refused calls did not spend the code')
  })

  t.test('answers 42001 once the token has expired naturally', async (t) => {
    const sim = await start(t, { tokenTtl: 60 })
    const token = await tokenOf(sim, ACME)
    sim.advance(60_000)
    t.equal((await exchange(sim, token, sim.issueCode(ACME.corpId, 'alice'))).errcode, 42001)
  })

  t.test('refuses to issue codes for unknown corps or members', async (t) => {
    const sim = await start(t)
    t.throws(() => sim.issueCode('ww-nope', 'alice'), /unknown corp/)
    t.throws(() => sim.issueCode(ACME.corpId, 'zed'), /no member/)
    t.type(sim.issueCode(ACME.corpId, 'hidden'), 'string', 'WeCom logs in members outside the visible range')
  })
})

t.test('expireTokens', async (t) => {
  t.test('ends live tokens with 42001 by default and gettoken issues a new one', async (t) => {
    const sim = await start(t)
    const acme = await tokenOf(sim, ACME)
    const globex = await tokenOf(sim, GLOBEX)
    sim.expireTokens(ACME.corpId)
    t.equal((await call(sim, 'user/get', { access_token: acme, userid: 'alice' })).errcode, 42001)
    t.equal((await call(sim, 'user/get', { access_token: globex, userid: 'gina' })).errcode, 0, 'other corps untouched')
    const fresh = await tokenOf(sim, ACME)
    t.not(fresh, acme)
    t.equal((await call(sim, 'user/get', { access_token: fresh, userid: 'alice' })).errcode, 0)
  })

  t.test('can answer 40014 instead, for every corp', async (t) => {
    const sim = await start(t)
    const acme = await tokenOf(sim, ACME)
    const globex = await tokenOf(sim, GLOBEX)
    sim.expireTokens(undefined, 40014)
    t.equal((await exchange(sim, acme, sim.issueCode(ACME.corpId, 'alice'))).errcode, 40014)
    t.equal((await call(sim, 'user/get', { access_token: globex, userid: 'gina' })).errcode, 40014)
  })
})

t.test('user/get', async (t) => {
  t.test('returns the set fields, status 1 by default, never mobile or email', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    t.same(await call(sim, 'user/get', { access_token: token, userid: 'alice' }), {
      errcode: 0,
      errmsg: 'ok',
      userid: 'alice',
      name: 'Alice',
      department: [1, 2],
      position: 'Engineer',
      status: 1,
    })
    t.same(await call(sim, 'user/get', { access_token: token, userid: 'bob' }), {
      errcode: 0,
      errmsg: 'ok',
      userid: 'bob',
      status: 1,
    })
    const carol = await call(sim, 'user/get', { access_token: token, userid: 'carol' })
    t.notOk('mobile' in carol || 'email' in carol, 'a post-2022 app gets no contact details')
  })

  t.test('reflects updateMember, including status', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    sim.updateMember(ACME.corpId, 'alice', { status: 5, position: 'Alumna' })
    const answer = await call(sim, 'user/get', { access_token: token, userid: 'alice' })
    t.equal(answer.status, 5)
    t.equal(answer.position, 'Alumna')
    t.equal(answer.name, 'Alice', 'unpatched fields stay')
    t.throws(() => sim.updateMember(ACME.corpId, 'alice', { userid: 'mallory' }))
  })

  t.test('answers 60011 outside the visible range', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'hidden' })).errcode, 60011)
    sim.updateMember(ACME.corpId, 'hidden', { visible: true })
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'hidden' })).errcode, 0)
  })

  t.test('answers 60111 for removed members and members of another corp', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    sim.removeMember(ACME.corpId, 'bob')
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'bob' })).errcode, 60111)
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'gina' })).errcode, 60111)
    sim.setMember(ACME.corpId, { userid: 'bob', name: 'Bob again' })
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'bob' })).name, 'Bob again')
  })

  t.test('members() lists the directory as it is now, as copies', async (t) => {
    const sim = await start(t)
    t.same(sim.members(GLOBEX.corpId).map(({ userid, name }) => ({ userid, name })), [{ userid: 'gina', name: 'Gina' }])
    await sim.removeMember(ACME.corpId, 'bob')
    await sim.disableMember(ACME.corpId, 'alice')
    const acme = sim.members(ACME.corpId)
    t.same(acme.map(({ userid }) => userid), ['alice', 'hidden', 'carol'], 'bob is gone')
    t.equal(acme[0].status, 2)
    acme[0].department!.push(99)
    t.same(sim.members(ACME.corpId)[0].department, [1, 2], 'a copy')
    t.throws(() => sim.members('ww-nope'), SimulatorNotFoundError)
  })

  t.test('checks the token first', async (t) => {
    const sim = await start(t)
    t.equal((await call(sim, 'user/get', { access_token: 'forged', userid: 'alice' })).errcode, 40014)
    t.equal((await call(sim, 'user/get', { userid: 'alice' })).errcode, 40014)
  })
})

t.test('answers unknown paths and non-GET methods like WeCom', async (t) => {
  const sim = await start(t)
  const unknown = await request(`${sim.url}/cgi-bin/nope`)
  t.equal(unknown.statusCode, 200)
  t.equal(((await unknown.body.json()) as Answer).errcode, 40066)
  const post = await request(`${sim.url}${PATH.gettoken}`, { method: 'POST', body: 'x' })
  t.equal(((await post.body.json()) as Answer).errcode, 43001)
})

t.test('faults', async (t) => {
  t.test('errcode faults answer HTTP 200 and are consumed in order', async (t) => {
    const sim = await start(t)
    const query = { corpid: ACME.corpId, corpsecret: ACME.secret }
    sim.inject('gettoken', { errcode: -1 })
    sim.inject('gettoken', { errcode: 45009, errmsg: 'custom text' }, 2)
    const busy = await call(sim, 'gettoken', query)
    t.equal(busy.errcode, -1)
    t.type(busy.errmsg, 'string')
    t.same(await call(sim, 'gettoken', query), { errcode: 45009, errmsg: 'custom text' })
    t.equal((await call(sim, 'gettoken', query)).errcode, 45009)
    t.equal((await call(sim, 'gettoken', query)).errcode, 0, 'the queue is empty again')
  })

  t.test('faults stay on their endpoint and Infinity lasts until clearFaults', async (t) => {
    const sim = await start(t)
    const token = await tokenOf(sim, ACME)
    sim.inject('user/get', { errcode: 60020 }, Infinity)
    for (let i = 0; i < 3; i++) {
      t.equal((await call(sim, 'user/get', { access_token: token, userid: 'alice' })).errcode, 60020)
    }
    t.equal(await tokenOf(sim, ACME), token)
    sim.clearFaults()
    t.equal((await call(sim, 'user/get', { access_token: token, userid: 'alice' })).errcode, 0)
  })

  t.test('timeout holds the request until the client gives up', async (t) => {
    const sim = await start(t)
    sim.inject('gettoken', { timeout: true })
    const started = Date.now()
    await t.rejects(
      request(`${sim.url}${PATH.gettoken}?corpid=${ACME.corpId}&corpsecret=${ACME.secret}`, {
        signal: AbortSignal.timeout(200),
      })
    )
    t.ok(Date.now() - started >= 190)
    t.equal(sim.calls.gettoken, 1)
  })

  t.test('drop destroys the socket without an answer', async (t) => {
    const sim = await start(t)
    sim.inject('jscode2session', { drop: true })
    await t.rejects(request(`${sim.url}${PATH.jscode2session}?js_code=x`))
  })

  t.test('malformed answers HTTP 200 with a body that is not JSON', async (t) => {
    const sim = await start(t)
    sim.inject('user/get', { malformed: true })
    const res = await request(`${sim.url}${PATH['user/get']}?userid=alice`)
    t.equal(res.statusCode, 200)
    const text = await res.body.text()
    t.throws(() => JSON.parse(text))
  })

  t.test('delay adds latency to one call, which then answers normally', async (t) => {
    const sim = await start(t)
    // A second of delay: a loopback call without it answers well within that on a loaded machine.
    sim.inject('gettoken', { delay: 1000 })
    let started = Date.now()
    t.ok(await tokenOf(sim, ACME))
    t.ok(Date.now() - started >= 990, 'the delayed call')
    started = Date.now()
    await tokenOf(sim, ACME)
    t.ok(Date.now() - started < 990, 'the next one is fast again')
  })

  t.test('latency applies to every call', async (t) => {
    // As above: a second, which a loopback call without latency stays well within however loaded.
    const sim = await start(t, { latency: 1000 })
    let started = Date.now()
    await tokenOf(sim, ACME)
    t.ok(Date.now() - started >= 990)
    sim.setLatency(0)
    started = Date.now()
    await tokenOf(sim, ACME)
    t.ok(Date.now() - started < 990)
  })

  t.test('rejects nonsense', async (t) => {
    const sim = await start(t)
    t.throws(() => sim.inject('gettoken', { errcode: -1 }, 0))
    t.throws(() => sim.inject('gettoken', { delay: -5 }))
    t.throws(() => sim.setLatency(Number.NaN))
    t.throws(() => sim.advance(-1))
  })
})

t.test('counters count every request, faulted or not, and reset', async (t) => {
  const sim = await start(t)
  sim.inject('gettoken', { errcode: -1 })
  await call(sim, 'gettoken', { corpid: ACME.corpId, corpsecret: ACME.secret })
  const token = await tokenOf(sim, ACME)
  await call(sim, 'user/get', { access_token: token, userid: 'nobody' })
  t.same(sim.calls, { gettoken: 2, jscode2session: 0, 'user/get': 1 })
  sim.resetCalls()
  t.same(sim.calls, { gettoken: 0, jscode2session: 0, 'user/get': 0 })
})

t.test('requests log keeps query values as WeCom parsed them, bounded to 100', async (t) => {
  const sim = await start(t)
  const token = await tokenOf(sim, ACME)
  const answer = await exchange(sim, token, 'a&userid=x')
  t.equal(answer.errcode, 40029, 'the whole string is one (unknown) code')
  const last = sim.requests.at(-1)
  t.same(last, {
    id: 2,
    endpoint: 'jscode2session',
    query: { access_token: token, js_code: 'a&userid=x', grant_type: 'authorization_code' },
    errcode: 40029,
    ms: last?.ms,
  })
  t.ok(Number.isInteger(last?.ms) && last!.ms! >= 0, 'with how long it took to answer')
  t.notOk(last && 'userid' in last.query, 'no parameter smuggled in')

  for (let i = 0; i < 120; i++) await tokenOf(sim, ACME)
  t.equal(sim.requests.length, 100)
  t.ok(sim.requests.every((r) => r.endpoint === 'gettoken'), 'the oldest entries went first')
  t.equal(sim.requests.at(-1)?.id, 122, 'ids count on past the bound')
})

t.test('a corp or member it does not have is a SimulatorNotFoundError, told apart by type and code', async (t) => {
  const sim = await start(t)
  const absent: Array<[string, () => unknown]> = [
    ['an unknown corp', () => sim.issueCode('ww-nope', 'alice')],
    ['an unknown member', () => sim.issueCode(ACME.corpId, 'zed')],
    ['a member of another corp', () => sim.updateMember(GLOBEX.corpId, 'alice', { name: 'A' })],
    ['a member removed', () => { sim.removeMember(ACME.corpId, 'bob'); return sim.disableMember(ACME.corpId, 'bob') }],
    ['a member without a session_key yet', () => sim.encryptUserInfo(ACME.corpId, 'alice', {}, 'wx-app')],
    ['the tokens of an unknown corp', () => sim.expireTokens('ww-nope')],
  ]
  for (const [what, call] of absent) {
    const error = (() => { try { call() } catch (error) { return error } })()
    t.ok(error instanceof SimulatorNotFoundError, `${what}: the class`)
    t.ok(isSimulatorNotFound(error), `${what}: the code`)
    t.match(error, { code: 'SIMULATOR_NOT_FOUND', message: /^WeCom simulator: / })
  }
  // Errors of the same prefix that are not a not-found: a control route must not answer them 404.
  const refused = await sim.setCallback(ACME.corpId, { url: 'http://127.0.0.1:9/', token: 't', encodingAESKey: 'k'.repeat(43) }).catch((error) => error)
  t.match(refused, { message: /^WeCom simulator: .*failed WeCom's check/ })
  t.notOk(isSimulatorNotFound(refused), 'a URL that failed the check')
  t.notOk(isSimulatorNotFound(await sim.sendEvent(ACME.corpId, {}).catch((error) => error)), 'an event for a corp without a callback')
  t.notOk(isSimulatorNotFound(new Error('WeCom simulator: corp "ww-nope" is made up')), 'the message prefix alone')
})

t.test('a trickled answer is logged with the time until its last byte', async (t) => {
  const sim = await start(t)
  sim.inject('gettoken', { trickle: 5 })
  const started = performance.now()
  await tokenOf(sim, ACME)
  const took = performance.now() - started
  const [entry] = sim.requests
  // Some 127 bytes at one per 5 ms: over 600 ms however fast the machine; at most what the client waited.
  t.ok(entry.ms! >= 500 && entry.ms! <= took + 1, `logged ${entry.ms} ms of the ${Math.round(took)} ms the client waited`)
})

t.test('encryptUserInfo round-trips with the member’s session_key', async (t) => {
  const sim = await start(t)
  t.throws(() => sim.encryptUserInfo(ACME.corpId, 'carol', {}, 'wx-app'), /issueCode first/)
  sim.issueCode(ACME.corpId, 'carol')
  const sessionKey = sim.sessionKey(ACME.corpId, 'carol') as string
  const before = Math.floor(Date.now() / 1000)
  const { encryptedData, iv } = sim.encryptUserInfo(ACME.corpId, 'carol', { mobile: '13800000000' }, 'wx-app')
  t.equal(Buffer.from(iv, 'base64').length, 16)

  const decipher = createDecipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), Buffer.from(iv, 'base64'))
  const plain = Buffer.concat([decipher.update(Buffer.from(encryptedData, 'base64')), decipher.final()])
  const payload = JSON.parse(plain.toString('utf8'))
  t.equal(payload.mobile, '13800000000')
  t.equal(payload.watermark.appid, 'wx-app')
  t.ok(payload.watermark.timestamp >= before && payload.watermark.timestamp <= before + 2)

  const other = sim.encryptUserInfo(ACME.corpId, 'carol', { mobile: '13800000000' }, 'wx-app')
  t.not(other.iv, iv, 'a random iv each time')
})

t.test('encryptWithSessionKey is deterministic given an iv', async (t) => {
  const key = Buffer.alloc(16, 7).toString('base64')
  const iv = Buffer.alloc(16, 1)
  const sealed = encryptWithSessionKey(key, { email: 'a@b.test' }, 'wx-app', iv)
  t.equal(sealed.iv, iv.toString('base64'))
  const decipher = createDecipheriv('aes-128-cbc', Buffer.from(key, 'base64'), iv)
  const plain = Buffer.concat([decipher.update(Buffer.from(sealed.encryptedData, 'base64')), decipher.final()])
  t.match(JSON.parse(plain.toString('utf8')), { email: 'a@b.test', watermark: { appid: 'wx-app' } })
  t.throws(() => encryptWithSessionKey('c2hvcnQ=', {}, 'wx-app'), /16 bytes/)
})

t.test('keeps connections alive between calls', async (t) => {
  const sim = await start(t)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const reused: boolean[] = []
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = httpGet(`${sim.url}${PATH.gettoken}?corpid=${ACME.corpId}&corpsecret=${ACME.secret}`, { agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('error', reject)
      reused.push(req.reusedSocket)
    })
  }
  t.same(reused, [false, true])
})

t.test('close() ends promptly while a timeout fault holds a request', async (t) => {
  const sim = await createWecomSimulator({ corps: [ACME], latency: 10_000 })
  sim.inject('gettoken', { timeout: true })
  // Settled into values right away: the rejections arrive during close(), before anyone awaits.
  const outcome = (p: Promise<unknown>) => p.then(() => 'answered', () => 'failed')
  const held = outcome(request(`${sim.url}${PATH.gettoken}`))
  const delayed = outcome(request(`${sim.url}${PATH.gettoken}`))
  t.ok(await eventually(5000, async () => sim.calls.gettoken === 2), 'both requests reached the server before the close')
  const started = Date.now()
  await sim.close()
  t.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`)
  t.equal(await held, 'failed')
  t.equal(await delayed, 'failed', 'pending latency timers are dropped too')
  await sim.close()
  t.pass('closing twice is harmless')
})
