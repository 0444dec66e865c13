import { createSigner } from 'fast-jwt'
import { Redis } from 'ioredis'
import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { createOffboarding, type OffboardingDependencies } from '../../src/events/offboarding.js'
import { deliveryLease } from '../../src/events/deliveries.js'
import { redisKeys } from '../../src/stores/redis/keys.js'
import { MemorySessionStore } from '../../src/stores/memory.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, CORP_B, JWT_SECRET, simulatorCorps } from '../helpers/setup.js'

const sim = await createWecomSimulator({ corps: simulatorCorps() })
t.teardown(() => sim.close())

t.test('revokeUser ends an access token whose session the store no longer has', async (t) => {
  // A store of one session: the next login pushes zhangsan's session out, its access token lives on.
  const a = await redisApp(t, sim, { redis: false }, { session: { maxSessions: 1 } })
  const dropped = (await a.login('zhangsan')).json()
  const other = (await a.login('zhaoliu', CORP_B)).json()
  t.equal((await a.refresh(dropped.refresh_token)).statusCode, 401, 'the session is gone from the store')
  t.equal((await a.me(dropped.access_token)).statusCode, 200, 'its access token still passes')

  await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
  const me = await a.me(dropped.access_token)
  t.equal(me.statusCode, 401)
  t.equal(me.json().code, 'WECOM_TOKEN_REVOKED')
  t.equal((await a.me(other.access_token)).statusCode, 200, 'other members keep theirs')
})

t.test('a login right after revokeUser, within the same second, is accepted', async (t) => {
  const a = await redisApp(t, sim, { redis: false })
  for (let i = 0; i < 5; i++) {
    const before = (await a.login('zhangsan')).json()
    t.equal((await a.me(before.access_token)).statusCode, 200, 'cached as valid before the off-boarding')
    await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
    const after = await a.login('zhangsan')
    t.equal(after.statusCode, 200)
    t.equal((await a.me(after.json().access_token)).statusCode, 200, `login ${i} after revokeUser passes`)
    t.equal((await a.me(before.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'the one before does not')
    t.equal((await a.refresh(after.json().refresh_token)).statusCode, 200, 'and the new session refreshes')
  }
})

t.test('a token signed with the key but without iat_ms counts as issued at the start of its second', async (t) => {
  const a = await redisApp(t, sim, { redis: false })
  const sign = createSigner({ key: JWT_SECRET, header: { alg: 'HS256', typ: 'at+jwt' }, expiresIn: 600_000 })
  const token = sign({ userid: 'zhangsan', corpid: CORP_A, sid: 'a-session-of-some-other-making', aud: 'fastify-wecom-auth' })
  t.equal((await a.me(token)).statusCode, 200)
  await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
  t.equal((await a.me(token)).json().code, 'WECOM_TOKEN_REVOKED', 'refused, though signed within the second of the off-boarding')
})

t.test('revokeUser forgets the member\'s session_key (in-process store)', async (t) => {
  const store = new MemorySessionStore({ maxSessions: 10 })
  await store.saveSessionKey(CORP_A, 'zhangsan', 'sealed', 60_000, Date.now())
  await store.saveSessionKey(CORP_B, 'zhaoliu', 'other', 60_000, Date.now())
  await store.revokeMember({ corpid: CORP_A, userid: 'zhangsan', notBefore: Date.now(), until: Date.now() + 60_000 })
  t.equal(await store.sessionKeyOf(CORP_A, 'zhangsan'), null)
  t.equal(await store.sessionKeyOf(CORP_B, 'zhaoliu'), 'other')
})

/**
 * WeCom's off-boarding on the in-process store, with failures injected: `failures` counts down
 * the calls of each dependency that throw. `lines` holds what was logged.
 */
function offboardingOn (store: MemorySessionStore, failures: { revokeUser?: number, settle?: number }, onEvent?: () => Promise<void>, lease = deliveryLease(1000)) {
  const lines: Array<{ level: string, fields: Record<string, unknown>, message: string }> = []
  const logged = (level: string) => (fields: object, message: string) => { lines.push({ level, fields: fields as Record<string, unknown>, message }) }
  const revoked: number[] = []
  const deps: OffboardingDependencies<undefined> = {
    async revokeUser (_corpId, _userid, at) {
      if ((failures.revokeUser = (failures.revokeUser ?? 0) - 1) >= 0) throw new StoreUnavailableError()
      revoked.push(at)
    },
    stillAllowed: async () => true,
    claimDelivery: (key, lease) => store.claimDelivery(key, lease),
    async settleDelivery (key, id, done, ttl) {
      if ((failures.settle = (failures.settle ?? 0) - 1) >= 0) throw new Error('the store is down')
      await store.settleDelivery(key, id, done, ttl)
    },
    renewDelivery: (key, id, lease) => store.renewDelivery(key, id, lease),
    lease,
    onEvent,
    log: { info: logged('info'), warn: logged('warn'), error: logged('error') }
  }
  const { handle } = createOffboarding(deps)
  const event = { ToUserName: CORP_A, CreateTime: '1700000000', MsgType: 'event', Event: 'change_contact', ChangeType: 'delete_user', UserID: 'zhangsan' }
  return { lines, revoked, deliver: () => handle(CORP_A, event, undefined) }
}

/** The end of the event's CreateTime second, in epoch ms: what its off-boarding ends things until. */
const EVENT_AT = 1700000000999

t.test('the store failing during the off-boarding: not acknowledged, and the next delivery acts, once', async (t) => {
  const o = offboardingOn(new MemorySessionStore({ maxSessions: 10 }), { revokeUser: 1 })
  await t.rejects(o.deliver(), { code: 'WECOM_STORE_UNAVAILABLE', statusCode: 503 }, 'answered 503: WeCom resends')
  t.match(o.lines.at(-1), { level: 'error', fields: { userid: 'zhangsan', action: 'revokeUser' }, message: /not acknowledged, WeCom's resend will retry it/ })
  t.notOk(o.lines.some((line) => /run revokeUser/.test(line.message)), 'no person is asked to do the plugin\'s work')
  await o.deliver()
  t.same(o.revoked, [EVENT_AT], 'the resend ended the sessions, at the event\'s time')
  await o.deliver()
  t.same(o.revoked, [EVENT_AT], 'and a resend after that did nothing')
  t.match(o.lines.at(-1), { level: 'info', message: /delivered again; answered without a second effect/ })
})

t.test('two deliveries of one event at once: one acts, the other answers 503 and does nothing', async (t) => {
  let release = () => {}
  // Released once both resends were answered, or after 30 s should a resend wrongly take the
  // claim and wait on it too: then the assertions below fail rather than the test hanging.
  const held = new Promise<void>((resolve) => { release = resolve; setTimeout(resolve, 30_000).unref() })
  const o = offboardingOn(new MemorySessionStore({ maxSessions: 10 }), {}, () => held)
  const first = o.deliver()
  await t.rejects(o.deliver(), { code: 'WECOM_CALLBACK_RETRY', statusCode: 503 })
  t.ok(o.lines.some((line) => /another delivery of it is being handled; not acknowledged/.test(line.message)))
  release()
  await first
  await o.deliver()
  t.same(o.revoked, [EVENT_AT], 'one off-boarding')
})

t.test('a claim the store could not release lapses after its lease; done but not remembered answers success', async (t) => {
  let clock = Date.now()
  const store = new MemorySessionStore({ maxSessions: 10, now: () => clock })
  const o = offboardingOn(store, { revokeUser: 1, settle: 1 })
  await t.rejects(o.deliver(), { code: 'WECOM_STORE_UNAVAILABLE' }, 'the answer is the failure\'s, not the release\'s')
  t.match(o.lines.at(-1), { level: 'warn', fields: { action: 'settle' }, message: /claim not released .*lapses in 10000 ms/ })
  await t.rejects(o.deliver(), { code: 'WECOM_CALLBACK_RETRY' }, 'the claim holds within its lease')
  clock += deliveryLease(1000)
  await o.deliver()
  t.same(o.revoked, [EVENT_AT], 'after it, a resend acts')

  const unremembered = offboardingOn(new MemorySessionStore({ maxSessions: 10 }), { settle: 1 })
  await unremembered.deliver()
  t.same(unremembered.revoked, [EVENT_AT])
  t.match(unremembered.lines.at(-1), { level: 'warn', message: /acted on, but not remembered as done .*answered success/ })
})

t.test('a claim outlasts the work of a delivery and lapses before WeCom\'s last resend', async (t) => {
  t.equal(deliveryLease(5000), 10_000, 'the default api.timeout: twice WeCom\'s 5 s wait, under its resends\' 15 s')
  t.equal(deliveryLease(1000), 10_000, 'never under 10 s: the store\'s commands and the host\'s hooks take time too')
  t.equal(deliveryLease(8000), 16_000, 'twice a longer api.timeout')
})

t.test('Redis store', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  let prefixes = 0
  const store = () => ({ redis: redis.url, keyPrefix: `offboarding-${++prefixes}:` })
  const inspector = new Redis(redis.url)
  // Redis is stopped on purpose below: its reconnection attempts are no news.
  inspector.on('error', () => {})
  t.teardown(() => inspector.quit())

  t.test('a token issued while Redis was down is refused on every instance after revokeUser, and by one started later', async (t) => {
    const keys = store()
    const a = await redisApp(t, sim, keys)
    const b = await redisApp(t, sim, keys)
    await redis.stop()
    const unstored = await a.login('zhangsan')
    t.equal(unstored.statusCode, 200)
    t.equal(unstored.json().refresh_token, undefined, 'no session was stored')
    const token = unstored.json().access_token
    await redis.start()
    for (const instance of [a, b]) {
      t.ok(await eventually(5000, async () => (await instance.login('zhaoliu', CORP_B)).json().refresh_token !== undefined), 'Redis is back')
    }
    t.equal((await b.me(token)).statusCode, 200, 'the token passes before the off-boarding')

    const started = Date.now()
    await b.app.wecom.revokeUser(CORP_A, 'zhangsan')
    t.equal((await b.me(token)).json().code, 'WECOM_TOKEN_REVOKED', 'on the instance that revoked, at once')
    const refused = await eventually(1000, async () => (await a.me(token)).statusCode === 401)
    t.ok(refused, `the other instance refused within ${Date.now() - started} ms`)
    t.equal((await a.me(token)).json().code, 'WECOM_TOKEN_REVOKED')

    const c = await redisApp(t, sim, keys)
    t.equal((await c.me(token)).json().code, 'WECOM_TOKEN_REVOKED', 'an instance started afterwards refuses it from the record')
    const fresh = await c.login('zhangsan')
    t.equal((await a.me(fresh.json().access_token)).statusCode, 200, 'a login after the off-boarding passes everywhere')
  })

  t.test('revokeUser ends the sessions and deletes the sealed session_key in Redis', async (t) => {
    const keys = store()
    const a = await redisApp(t, sim, keys)
    const login = (await a.login('zhangsan')).json()
    const sessionKey = redisKeys.sessionKey(keys.keyPrefix, CORP_A, 'zhangsan')
    t.equal(await inspector.exists(sessionKey), 1)
    await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
    t.equal(await inspector.exists(sessionKey), 0, 'the session_key is gone')
    t.same(await inspector.keys(`${keys.keyPrefix}session:*`), [], 'and the sessions')
    t.equal((await a.refresh(login.refresh_token)).statusCode, 401)
    const record = await inspector.zrange(redisKeys.notBefore(keys.keyPrefix), '0', '-1', 'WITHSCORES')
    t.equal(record.length, 2, 'one not-before recorded')
    t.notOk(record.join(' ').includes(login.refresh_token), 'no token in the record')
    const ttl = await inspector.pttl(redisKeys.notBefore(keys.keyPrefix))
    t.ok(ttl > 0 && ttl <= 900_000, `the record expires with the last access token it refuses (${ttl} ms)`)
  })
})

t.test('a refresh racing with revokeUser never leaves a token that passes after it resolved', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  // Where revokeUser lands in a refresh, made certain rather than left to the machine's timing:
  // after the refresh signed its token and before it stored the rotation (it pauses in
  // extendClaims), or after it stored the rotation and before it answered (in hooks.onRefresh).
  type Point = 'signed' | 'stored'
  let gate: { at: Point, reached: () => void, release: Promise<void> } | undefined
  const pause = async (at: Point) => {
    const held = gate
    if (held?.at !== at) return
    gate = undefined
    held.reached()
    await held.release
  }
  const racing = {
    extendClaims: async (_member: unknown, request?: { url: string }) => {
      if (request?.url.endsWith('/refresh') === true) await pause('signed')
      return {}
    },
    hooks: { onRefresh: () => pause('stored') }
  }
  // A Redis that did not answer within the store's 1 s (a loaded machine) fails revokeUser, which
  // then promises nothing; it is asked again, as an operator would.
  const revoke = async (app: { wecom: { revokeUser: (corpId: string, userid: string) => Promise<void> } }) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await app.wecom.revokeUser(CORP_A, 'zhangsan')
      } catch (error) {
        if ((error as { code?: string }).code !== 'WECOM_STORE_UNAVAILABLE' || attempt === 5) throw error
      }
    }
  }
  const stores = [['in process', { redis: false as const }], ['Redis', { redis: redis.url, keyPrefix: 'race:' }]] as const
  for (const [name, store] of stores) {
    const a = await redisApp(t, sim, store, racing)
    const b = name === 'Redis' ? await redisApp(t, sim, store) : a
    const refusedEverywhere = async (accessToken: string, what: string) => {
      for (const instance of [a, b]) {
        t.ok(await eventually(1000, async () => (await instance.me(accessToken)).statusCode === 401), what)
      }
    }
    for (const at of ['signed', 'stored'] as const) {
      const login = (await a.login('zhangsan')).json()
      let reached: () => void = () => {}
      let release: () => void = () => {}
      const paused = new Promise<void>((resolve) => { reached = resolve })
      gate = { at, reached, release: new Promise<void>((resolve) => { release = resolve }) }
      const refreshing = a.refresh(login.refresh_token)
      await paused
      await revoke(a.app)
      release()
      const refreshed = await refreshing
      if (at === 'signed') {
        t.equal(refreshed.statusCode, 401, `${name}: revokeUser ended the session before the rotation was stored: the refresh is refused`)
      } else {
        t.equal(refreshed.statusCode, 200, `${name}: the rotation was stored before revokeUser: the refresh answers`)
        await refusedEverywhere(refreshed.json().access_token, `${name}: its token, signed before revokeUser, is refused once it resolved`)
      }
    }
    // And left to timing, as it comes: whatever each refresh answered, no token of it passes.
    for (let i = 0; i < 10; i++) {
      const login = (await a.login('zhangsan')).json()
      const refreshing = a.refresh(login.refresh_token)
      await revoke(a.app)
      const refreshed = await refreshing
      if (refreshed.statusCode === 200) await refusedEverywhere(refreshed.json().access_token, `${name}, try ${i}: the token of the racing refresh is refused`)
    }
  }
})

t.test('work that outlasts the lease keeps its claim: a resend meanwhile is busy, never a second effect', async (t) => {
  let calls = 0
  let release: () => void = () => {}
  // Released after the resends, or after 30 s should a resend wrongly take the claim and wait on
  // it too: then the assertions below fail rather than the test hanging.
  const held = new Promise<void>((resolve) => { release = resolve; setTimeout(resolve, 30_000).unref() })
  const slow = async () => {
    calls++
    await held
  }
  // The store's clock is the test's: the 300 ms lease runs out only when the test moves it, so no
  // stalled event loop (other tests run beside this one) can make it lapse. The renewals come on
  // the real clock, every 100 ms; each round waits for one at the store's current time, moves the
  // clock by most of the lease and resends. After three rounds 750 ms have passed, and without
  // renewals the claim would have lapsed at 300 and the second resend taken it.
  let now = 0
  const store = new MemorySessionStore({ maxSessions: 10, now: () => now })
  let renewals = 0
  const renew = store.renewDelivery.bind(store)
  store.renewDelivery = async (key, id, lease) => {
    const renewed = await renew(key, id, lease)
    if (renewed) renewals++
    return renewed
  }
  const o = offboardingOn(store, {}, slow, 300)
  const first = o.deliver()
  for (let round = 1; round <= 3; round++) {
    const seen = renewals
    // 30 s: a renewal is due every 100 ms; the bound is for a starved process only.
    t.ok(await eventually(30_000, async () => renewals > seen), `round ${round}: renewed`)
    now += 250
    await t.rejects(o.deliver(), { code: 'WECOM_CALLBACK_RETRY' }, `round ${round}: a resend is busy while the first delivery works`)
  }
  release()
  await first
  await o.deliver()
  t.equal(calls, 1, 'onEvent ran once')
  t.equal(o.revoked.length, 1, 'the off-boarding ran once')
})
