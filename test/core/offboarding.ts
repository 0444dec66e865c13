import { createSigner } from 'fast-jwt'
import { Redis } from 'ioredis'
import t from 'tap'
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

t.test('Redis store', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  let prefixes = 0
  const store = () => ({ redis: redis.url, keyPrefix: `offboarding-${++prefixes}:` })
  const inspector = new Redis(redis.url)
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
  const stores = [['in process', { redis: false as const }], ['Redis', { redis: redis.url, keyPrefix: 'race:' }]] as const
  for (const [name, store] of stores) {
    const a = await redisApp(t, sim, store)
    const b = name === 'Redis' ? await redisApp(t, sim, store) : a
    for (let i = 0; i < 15; i++) {
      const login = (await a.login('zhangsan')).json()
      // The refresh is sent first and not awaited: its rotation lands while revokeUser runs.
      const refreshing = a.refresh(login.refresh_token)
      await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
      const refreshed = await refreshing
      if (refreshed.statusCode !== 200) continue
      for (const instance of [a, b]) {
        t.ok(await eventually(1000, async () => (await instance.me(refreshed.json().access_token)).statusCode === 401),
          `${name}, try ${i}: the token of the racing refresh is refused`)
      }
    }
  }
})
