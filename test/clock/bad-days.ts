import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { CORP_A, CORP_B, SECRET_A, setup, warmUp, type Harness } from '../helpers/setup.js'

// WeCom's bad days, against the simulator: one deadline per request, a breaker, remembered
// refusals, the outbound budget and the per-client rate limit (issue 7).

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Added to the deadline bounds below (api.timeout + 200 ms, the contract, which bench/ measures
 * on an idle machine): on a 2-core box shared with other jobs, timers and sockets were seen to
 * fire up to 2.3 s late (128 logins answered in 3286 ms at a load of 14; 1942 ms at 10), and
 * the tests of test/clock/ share one event loop, side by side. What proves each deadline is a
 * count or a status (a WeCom call never made; a 503 where calls with a timeout each would have
 * answered 200 after 2.7 s); the time says the login was not left hanging, as a missed deadline
 * would leave it (a trickled answer takes 30 s, a stalled one forever).
 */
const LOAD_SLACK = 4000

/** Wall time of one login, in ms. */
async function timed (login: () => Promise<LightMyRequestResponse>): Promise<{ res: LightMyRequestResponse, ms: number }> {
  const started = Date.now()
  const res = await login()
  return { res, ms: Date.now() - started }
}

/** Log lines whose message matches. */
const lines = (h: Harness, pattern: RegExp) => h.logs.records.filter((r) => pattern.test(String(r.msg)))

t.test('a reset secret (40001 from gettoken) costs one gettoken per window, whatever the login rate', async (t) => {
  // 3 s: a refusal that waited out the window would take up to this long; the logins are spread
  // over it, so half of them would take more than half a window (below).
  const window = 3000
  const h = await setup(t, { api: { refusals: { config: window } } })
  h.sim.addCorp({ corpId: CORP_A, secret: 'reset-in-the-admin-console', members: [{ userid: 'zhangsan' }] })
  const first = await timed(() => h.login('zhangsan'))
  t.equal(first.res.statusCode, 502)
  t.equal(first.res.json().code, 'WECOM_UPSTREAM_ERROR')

  // At least 2.5 windows and 50 logins, one every 10 ms. On a loaded machine 50 logins can take
  // longer than 2.5 windows: the bound on gettoken calls follows the windows that really passed.
  const started = Date.now()
  const times: number[] = []
  while (Date.now() - started < 2.5 * window || times.length < 50) {
    const { res, ms } = await timed(() => h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'whatever-code' } }))
    t.equal(res.statusCode, 502)
    times.push(ms)
    await sleep(10)
  }
  const answered = times.length
  const windows = Math.ceil((Date.now() - started) / window)
  // One call at the start of each window: the first login's, then one per window at most.
  t.ok(h.sim.calls.gettoken <= 1 + windows, `${h.sim.calls.gettoken} gettoken calls for ${answered} logins over ${windows} windows`)
  t.equal(h.sim.calls.jscode2session, 0)
  // The calls counted above show WeCom was not asked; this shows the refusals did not wait for the
  // window. Counted, not the slowest: one refusal took 1.6 s at a load of 12, as the tests beside
  // it held the event loop, while nine in ten of refusals that waited would not pass.
  const quick = times.filter((ms) => ms < window / 2).length
  t.ok(quick >= 0.9 * answered, `${quick} of ${answered} remembered refusals answered within ${window / 2} ms (slowest ${Math.max(...times)} ms)`)
  const said = lines(h, /gettoken refused this app/)
  t.ok(said.length >= 1 && said.length <= 1 + windows, `${said.length} error lines, one per window`)
  t.equal(said[0].level, 50)
  t.match(String(said[0].msg), /invalid secret/)

  h.sim.addCorp({ corpId: CORP_A, secret: SECRET_A, members: [{ userid: 'zhangsan' }] })
  await sleep(window + 50)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'the first login after the window succeeds')
})

t.test('every configuration errcode of gettoken is remembered for the app', async (t) => {
  for (const errcode of [40013, 60020, 48002, 40001]) {
    const h = await setup(t)
    h.sim.inject('gettoken', { errcode }, Infinity)
    for (let i = 0; i < 20; i++) t.equal((await h.login('zhangsan')).statusCode, 502, `${errcode}`)
    t.equal(h.sim.calls.gettoken, 1, `${errcode}: one gettoken for 20 logins`)
    h.sim.clearFaults()
    t.equal((await h.login('zhaoliu', CORP_B, { corpId: CORP_B })).statusCode, 200, 'another app is not refused')
  }
})

t.test('40014 to every jscode2session: one refetch, then 503s while gettoken backs off, never a window of 502s', async (t) => {
  const h = await setup(t)
  t.equal((await h.login('zhangsan')).statusCode, 200)
  h.sim.resetCalls()
  h.sim.inject('jscode2session', { errcode: 40014 }, Infinity)
  const started = Date.now()
  for (let i = 0; i < 20; i++) t.equal((await h.login('zhangsan')).statusCode, 503)
  // The back-off starts at 1 s and a gettoken that answers starts it over: at most one a second.
  const seconds = Math.ceil((Date.now() - started) / 1000)
  t.ok(h.sim.calls.gettoken >= 1 && h.sim.calls.gettoken <= seconds + 1, `${h.sim.calls.gettoken} gettoken calls in ${seconds} s, not one per login`)
  t.ok(h.sim.calls.jscode2session <= 20 + h.sim.calls.gettoken, `${h.sim.calls.jscode2session} jscode2session calls: each login its one, and one retry per fetched token`)
  t.equal(lines(h, /refused this app/).length, 0, 'the app is not refused')
  h.sim.clearFaults()
  await sleep(1100)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'over when WeCom takes the token again')
})

t.test('48002 from jscode2session is not remembered: a client can provoke it with a foreign code', async (t) => {
  const h = await setup(t)
  h.sim.inject('jscode2session', { errcode: 48002 })
  t.equal((await h.login('zhangsan')).statusCode, 502)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'the next member is not locked out')
})

for (const [errcode, option] of [[45009, 'frequency'], [45033, 'concurrency']] as const) {
  t.test(`${errcode} from jscode2session pauses that corp's jscode2session calls for the window`, async (t) => {
    const h = await setup(t, { api: { refusals: { [option]: 3000 } } })
    t.equal((await h.login('zhangsan')).statusCode, 200)
    h.sim.resetCalls()
    h.sim.inject('jscode2session', { errcode })
    t.equal((await h.login('zhangsan')).statusCode, 503)
    for (let i = 0; i < 10; i++) {
      const res = await h.login('zhangsan')
      t.equal(res.statusCode, 503)
      t.equal(res.json().code, 'WECOM_UNAVAILABLE')
      const retryAfter = Number(res.headers['retry-after'])
      t.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${retryAfter} s: what is left of the window`)
    }
    t.equal(h.sim.calls.jscode2session, 1, 'no call to WeCom inside the window')
    t.equal((await h.login('zhaoliu', CORP_B, { corpId: CORP_B })).statusCode, 200, 'another corp is not paused')
    t.equal(lines(h, new RegExp(`answered ${errcode}`)).length, 1, 'one log line for the window')
  })
}

t.test('a body trickled one byte every 300 ms: the login answers 503 within the deadline', async (t) => {
  // api.timeout 2 s, not 1: the login must reach the trickle under it on a loaded machine. A
  // trickled answer of ~100 bytes would take 30 s.
  const h = await setup(t, { api: { timeout: 2000 } })
  t.equal(await warmUp(h), 200)
  h.sim.inject('jscode2session', { trickle: 300 })
  const { res, ms } = await timed(() => h.login('zhangsan'))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'WECOM_UNAVAILABLE')
  t.ok(res.headers['retry-after'])
  // The bound the issue sets: api.timeout + 200 ms.
  t.ok(ms < 2200 + LOAD_SLACK, `answered in ${ms} ms`)
})

t.test('three calls of 900 ms: the login answers within api.timeout + 200 ms, not 2.7 s', async (t) => {
  const h = await setup(t, { api: { timeout: 1000 } }, { latency: 900 })
  const { res, ms } = await timed(() => h.login('zhangsan'))
  // The proof: with a timeout per call instead of one deadline, each call would answer in time
  // and the login would be a 200 after 2.7 s.
  t.equal(res.statusCode, 503)
  t.ok(ms >= 950 && ms < 1200 + LOAD_SLACK, `answered in ${ms} ms`)
  t.equal(h.sim.calls['user/get'], 0, 'user/get is never reached')
})

t.test('app.wecom.login() keeps the same deadline', async (t) => {
  const h = await setup(t, { api: { timeout: 500 } }, { latency: 400 })
  const started = Date.now()
  await t.rejects(h.app.wecom.login(h.sim.issueCode(CORP_A, 'zhangsan')), { code: 'WECOM_UNAVAILABLE' })
  t.ok(Date.now() - started < 700 + LOAD_SLACK, `${Date.now() - started} ms`)
})

t.test('a -1 retry is not started when the time left could not cover it', async (t) => {
  // api.timeout 2 s, not 1: the login must reach its one jscode2session under it on a loaded machine.
  const h = await setup(t, { api: { timeout: 2000 } })
  t.equal(await warmUp(h), 200)
  h.sim.resetCalls()
  // -1 after 1200 ms: a retry would take as long again, and only 800 ms are left.
  h.sim.inject('jscode2session', { errcode: -1 })
  h.sim.setLatency(1200)
  const { res, ms } = await timed(() => h.login('zhangsan'))
  t.equal(res.statusCode, 503)
  // The call count is the proof; the time only says the deadline held, for on a loaded machine
  // giving up at 1200 ms and waiting for the deadline at 2000 ms cannot be told apart by the clock.
  t.ok(ms < 2200 + LOAD_SLACK, `gave up after ${ms} ms`)
  t.equal(h.sim.calls.jscode2session, 1, 'no retry was sent')
})

t.test('128 concurrent logins while WeCom hangs: all within the deadline; then the breaker fails fast; then recovery', async (t) => {
  // Long enough to outlast the rest of the 128 (up to LOAD_SLACK after it opened) and the 100
  // fast logins after them on a loaded machine (up to 3 s at a load of 14): at 1500 ms a busy box
  // saw it half-open mid-way, and a second 'breaker open' line; at 4000 ms, a load of 13 did.
  const coolDown = 10_000
  // api.timeout 2 s, not 1, as for the tests above.
  const h = await setup(t, { api: { timeout: 2000, breaker: { failures: 5, coolDown } } })
  t.equal(await warmUp(h), 200)
  h.sim.inject('jscode2session', { timeout: true }, Infinity)
  const hung = await Promise.all(Array.from({ length: 128 }, () => timed(() => h.login('zhangsan'))))
  t.same(new Set(hung.map((r) => r.res.statusCode)), new Set([503]))
  const slowest = Math.max(...hung.map((r) => r.ms))
  t.ok(slowest < 2200 + LOAD_SLACK, `slowest of 128 answered in ${slowest} ms (api.timeout + 200 ms, and the slack)`)

  const fast = []
  for (let i = 0; i < 100; i++) fast.push(await timed(() => h.login('zhangsan')))
  t.same(new Set(fast.map((r) => r.res.statusCode)), new Set([503]))
  // A login that waited on the hung WeCom would take api.timeout (2 s); 1 s, half of it, is far
  // above a refusal's cost even at a load of 14 (92 of 100 were within 200 ms there).
  const quick = fast.filter((r) => r.ms < 1000).length
  t.ok(quick >= 95, `${quick} of 100 answered within 1000 ms while the breaker is open`)
  const retryAfter = Number(fast[0].res.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= coolDown / 1000, `Retry-After ${retryAfter} s: the cool-down left`)
  // One line per opening: a cool-down that ran out during the fast logins (they took 9 s at a load
  // of 14) let one probe through to the hung WeCom, which opened it again.
  const opened = lines(h, /breaker open/)
  const coolDowns = Math.floor((Date.now() - Number(opened[0]?.time)) / coolDown)
  t.ok(opened.length >= 1 && opened.length <= 1 + coolDowns, `${opened.length} lines in ${coolDowns + 1} cool-downs: one when it opened, none per login`)

  h.sim.clearFaults()
  await sleep(coolDown + 50)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'the probe goes through and closes it')
  t.equal((await h.login('zhangsan')).statusCode, 200)
  t.equal(lines(h, /breaker closed/).length, 1)
})

t.test('api.breaker false: no breaker, every login waits for WeCom', async (t) => {
  // The drops answer at once: the harness's patient api.timeout only lets the healthy first
  // login through on a loaded machine (200 ms did not, at a load of 4; 1 s did not at 13).
  const h = await setup(t, { api: { breaker: false } })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  h.sim.inject('jscode2session', { drop: true }, Infinity)
  for (let i = 0; i < 8; i++) t.equal((await h.login('zhangsan')).statusCode, 503)
  t.equal(h.sim.calls.jscode2session, 9)
  t.equal(lines(h, /breaker/).length, 0)
})

t.test('errcodes never open the breaker: WeCom answered', async (t) => {
  const h = await setup(t, { api: { breaker: { failures: 2, coolDown: 10_000 } } })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  for (let i = 0; i < 5; i++) {
    h.sim.inject('jscode2session', { errcode: 40029 })
    t.equal((await h.login('zhangsan')).statusCode, 401)
  }
  t.equal((await h.login('zhangsan')).statusCode, 200)
})

t.test('the outbound budget: when spent, 503 at once without calling WeCom, said once', async (t) => {
  const h = await setup(t, { api: { budget: 3 } })
  for (let i = 0; i < 3; i++) t.equal((await h.login('zhangsan')).statusCode, 200)
  const calls = { ...h.sim.calls }
  const res = await h.login('zhangsan')
  t.equal(res.statusCode, 503)
  t.ok(Number(res.headers['retry-after']) >= 1)
  t.equal((await h.login('zhangsan')).statusCode, 503)
  t.same(h.sim.calls, calls, 'no WeCom call once spent')
  t.equal(lines(h, /budget .* spent/).length, 1)
  t.equal((await h.login('zhaoliu', CORP_B, { corpId: CORP_B })).statusCode, 200, 'per corp')
})

t.test('api.clientShare: one client spends at most its share of a corp\'s budget; the others log in', async (t) => {
  // A quarter of 400: 100 calls a minute for one address (never below 100: see clientBudget).
  // api.timeout 30 s: 110 logins at once in a loaded process are slow, and logins that could not
  // finish within the deadline would be refused (503) before any share is counted.
  const h = await setup(t, { api: { budget: 400, clientShare: 0.25, timeout: 30_000 } })
  const from = (remoteAddress: string) => () => h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan') }, remoteAddress })
  const first = await Promise.all(Array.from({ length: 110 }, from('203.0.113.7')))
  const count = (status: number) => first.filter((res) => res.statusCode === status).length
  t.same([count(200), count(503)], [100, 10], 'a quarter of 400 for one address, the rest 503')
  t.equal(h.sim.calls.jscode2session, 100, 'the refused ones spent no code')
  t.equal((await from('198.51.100.2')()).statusCode, 200, 'another address has its own share')
  t.notOk(h.logs.records.some((r) => (r.level as number) >= 40 && /budget/.test(String(r.msg))), 'a client\'s own limit is not the operator\'s warning')
})

t.test('three addresses sending made-up codes at the rate limit do not spend the budget of everyone else', async (t) => {
  // api.timeout 30 s, as above: 450 logins at once.
  const h = await setup(t, { api: { budget: 400, timeout: 30_000 }, rateLimit: { max: 1000 } })
  const made = (remoteAddress: string, i: number) => h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: `made-up-${remoteAddress}-${i}` }, remoteAddress })
  await Promise.all(['203.0.113.7', '203.0.113.8', '203.0.113.9'].flatMap((address) => Array.from({ length: 150 }, (_, i) => made(address, i))))
  t.equal(h.sim.calls.jscode2session, 300, 'each address a quarter of the budget: 300 of 400')
  t.equal((await h.login('zhangsan')).statusCode, 200, 'a colleague still logs in')
})

t.test('per-client rate limit on /login: made-up codes cannot spend the quota; others log in', async (t) => {
  const max = 20
  const h = await setup(t, { rateLimit: { max, timeWindow: 60_000 } })
  const attacker = { remoteAddress: '203.0.113.7' }
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: `made-up-${i}` }, ...attacker })))
  const limited = answers.filter((r) => r.statusCode === 429)
  t.equal(limited.length, 200 - max)
  t.ok(h.sim.calls.jscode2session <= max, `${h.sim.calls.jscode2session} jscode2session calls`)
  const refused = limited[0]
  t.equal(refused.json().code, 'WECOM_RATE_LIMITED')
  t.equal(refused.json().statusCode, 429)
  t.ok(Number(refused.headers['retry-after']) > 0)
  t.equal(refused.headers['x-ratelimit-limit'], String(max))
  t.equal(refused.headers['x-ratelimit-remaining'], '0')
  const member = await h.app.inject({
    method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan') }, remoteAddress: '198.51.100.20'
  })
  t.equal(member.statusCode, 200, 'a member at another address logs in')
  const refresh = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: 'x' }, ...attacker })
  t.equal(refresh.statusCode, 401, '/refresh has its own count')
  t.equal(refresh.headers['x-ratelimit-limit'], String(max))
  const host = await h.app.inject({ url: '/api/me', ...attacker })
  t.notOk(host.headers['x-ratelimit-limit'], 'the host\'s routes are not limited')
})

t.test('rateLimit: false turns it off; keyGenerator is the caller\'s', async (t) => {
  const off = await setup(t, { rateLimit: false })
  const res = await off.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' } })
  t.notOk(res.headers['x-ratelimit-limit'])

  const byHeader = await setup(t, { rateLimit: { max: 1, keyGenerator: (request) => String(request.headers['x-client']) } })
  const send = (client: string) => byHeader.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x' }, headers: { 'x-client': client } })
  t.equal((await send('a')).statusCode, 401)
  t.equal((await send('a')).statusCode, 429)
  t.equal((await send('b')).statusCode, 401)
})

t.test('code length is counted in UTF-16 units (bytes for ASCII), not code points', async (t) => {
  const h = await setup(t)
  for (const code of ['😀'.repeat(300), '好'.repeat(100), 'a b', 'x'.repeat(513), '\u0000abc']) {
    const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
    t.equal(res.statusCode, 400, JSON.stringify(code.slice(0, 8)))
  }
  t.equal(h.sim.calls.jscode2session, 0, 'none reached WeCom')
  const longest = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: 'x'.repeat(512) } })
  t.equal(longest.statusCode, 401, '512 ASCII characters reach WeCom')
})

t.test('gettoken unreachable: at most one attempt a second per app, doubling, whatever the login rate', async (t) => {
  const h = await setup(t, { api: { breaker: false } })
  h.sim.inject('gettoken', { drop: true }, Infinity)
  const started = Date.now()
  while (Date.now() - started < 3500) {
    t.equal((await h.login('zhangsan')).statusCode, 503)
    await sleep(20)
  }
  // Attempts at 0, after 1 s, after 2 s more: 3 in 3.5 s (not one per login).
  t.ok(h.sim.calls.gettoken >= 2 && h.sim.calls.gettoken <= 3, `${h.sim.calls.gettoken} gettoken calls in 3.5 s`)
  h.sim.clearFaults()
  await sleep(4100)
  t.equal((await h.login('zhangsan')).statusCode, 200, 'the first login after the back-off gets a token')
})

t.test('-1 from gettoken, retried and still -1: backs off like a transport failure', async (t) => {
  // The harness's patient api.timeout: the retries are counted exactly, and a retry is not started
  // when the time left could not cover it, which on a loaded machine comes sooner (tested above).
  const h = await setup(t)
  h.sim.inject('gettoken', { errcode: -1 }, Infinity)
  t.equal((await h.login('zhangsan')).statusCode, 503)
  const calls = h.sim.calls.gettoken
  t.equal(calls, 4, 'the call and its three retries')
  const started = Date.now()
  for (let i = 0; i < 10; i++) t.equal((await h.login('zhangsan')).statusCode, 503)
  // None within the back-off (1 s, then 2, 4…): the 10 logins take milliseconds, but took over a
  // second at a load of 12, when one more attempt (its four calls) was due.
  const dueAttempts = Math.floor(Math.log2((Date.now() - started) / 1000 + 1))
  t.ok(h.sim.calls.gettoken - calls <= 4 * dueAttempts, `${h.sim.calls.gettoken - calls} more calls, not 4 for each of 10 logins: none within the back-off`)
})

t.test('one 40001 from jscode2session or user/get is a stale token: refreshed once, retried, and nothing remembered', async (t) => {
  for (const endpoint of ['jscode2session', 'user/get'] as const) {
    const h = await setup(t)
    t.equal((await h.login('zhangsan')).statusCode, 200)
    h.sim.inject(endpoint, { errcode: 40001 })
    t.equal((await h.login('zhangsan')).statusCode, 200, `${endpoint}: the retry with a fresh token succeeds`)
    t.equal((await h.login('zhangsan')).statusCode, 200, `${endpoint}: the app is not refused`)
  }
})

t.test('while user/get is paused or refused, a login does not spend its code on jscode2session', async (t) => {
  for (const errcode of [45009, 40013]) {
    const h = await setup(t)
    t.equal((await h.login('zhangsan')).statusCode, 200)
    h.sim.inject('user/get', { errcode }, Infinity)
    const first = await h.login('zhangsan')
    const expected = errcode === 45009 ? 503 : 502
    t.equal(first.statusCode, expected)
    if (errcode === 45009) t.ok(Number(first.headers['retry-after']) > 5, 'the first 503 already carries the window, not the default')
    const calls = h.sim.calls.jscode2session
    for (let i = 0; i < 10; i++) t.equal((await h.login('zhangsan')).statusCode, expected)
    t.equal(h.sim.calls.jscode2session, calls, `${errcode}: no code spent in the window`)
  }
})

t.test('a dead user/get opens its own breaker even while jscode2session answers', async (t) => {
  const h = await setup(t, { api: { breaker: { failures: 3, coolDown: 5000 } } })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  h.sim.inject('user/get', { drop: true }, Infinity)
  for (let i = 0; i < 3; i++) t.equal((await h.login('zhangsan')).statusCode, 503)
  const calls = h.sim.calls.jscode2session
  const res = await h.login('zhangsan')
  t.equal(res.statusCode, 503)
  t.ok(Number(res.headers['retry-after']) >= 4)
  t.equal(h.sim.calls.jscode2session, calls, 'no code spent while user/get\'s breaker is open')
  t.equal(lines(h, /user\/get is not answering; breaker open/).length, 1)
})

t.test('an outage logs once per change, not once per login', async (t) => {
  const faults = [{ drop: true as const }, { malformed: true as const }, { errcode: -1 }, { errcode: 92002 }]
  for (const fault of faults) {
    const h = await setup(t, { api: { breaker: false } })
    t.equal((await h.login('zhangsan')).statusCode, 200)
    h.sim.inject('user/get', fault, Infinity)
    for (let i = 0; i < 15; i++) t.ok((await h.login('zhangsan')).statusCode >= 500)
    const loud = h.logs.records.filter((r) => Number(r.level) >= 40)
    t.equal(loud.length, 1, `${JSON.stringify(fault)}: one warn/error line for 15 failed logins`)
    t.notOk(/access_token|corpsecret/.test(JSON.stringify(loud)), 'naming no secret')
    h.sim.clearFaults()
    t.equal((await h.login('zhangsan')).statusCode, 200)
    t.equal(lines(h, /^wecom: user\/get answers again$/).length, 1, 'and once when it is over')
  }
})

t.test('a WeCom answer past 64 KiB is not read whole', async (t) => {
  const h = await setup(t)
  h.sim.setMember(CORP_A, { userid: 'zhangsan', name: 'x'.repeat(100 * 1024) })
  const res = await h.login('zhangsan')
  t.equal(res.statusCode, 502)
})
