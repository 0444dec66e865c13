import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import fastifyWecomAuth from '../../src/index.js'
import { redisKeys } from '../../src/stores/redis/keys.js'
import { RedisSessionStore } from '../../src/stores/redis/sessions.js'
import { StoreDownError, type DeliveryClaim, type Revocation, type SessionRecord } from '../../src/stores/store.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { SharedStoreError } from '../../src/wecom/credentials.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { buildApp, captureLogs, CORP_A, JWT_SECRET, PATIENT_TIMEOUT, SECRET_A, simulatorCorps, type LogCapture } from '../helpers/setup.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  let prefixes = 0
  const nextPrefix = () => `store-${++prefixes}:`

  /** A ready client of the test's own, closed at teardown. */
  const client = async (t: Test): Promise<Redis> => {
    const connection = new Redis(redis.url)
    t.teardown(() => connection.quit())
    await connection.ping()
    return connection
  }

  const session = (sid: string, refreshHash: string): SessionRecord => ({
    sid,
    corpid: CORP_A,
    userid: 'zhangsan',
    member: { userid: 'zhangsan', corpid: CORP_A },
    generation: 0,
    refreshHash,
    checkedAt: Date.now(),
    expiresAt: Date.now() + 60_000
  })

  /** A claim's id, for a claim that must be new. */
  const idOf = (claim: DeliveryClaim): string => {
    if (claim.state !== 'new') throw new Error(`the claim is ${claim.state}, not new`)
    return claim.id
  }

  /** The connections Redis has open under a name, by CLIENT LIST. */
  const named = async (inspector: Redis, name: string): Promise<number> =>
    (await inspector.client('LIST') as string).split('\n').filter((line) => line.includes(` name=${name} `)).length

  t.test('rotate: of two racing with one hash, exactly one replaces the session', async (t) => {
    const store = new RedisSessionStore({ client: await client(t), keyPrefix: nextPrefix() })
    t.teardown(() => store.close())
    await store.save(session('sid-race-0000000001', 'h0'))
    const outcomes = await Promise.all([
      store.rotate(session('sid-race-0000000001', 'h1'), 'h0'),
      store.rotate(session('sid-race-0000000001', 'h2'), 'h0')
    ])
    t.same(outcomes.filter(Boolean).length, 1)
    const stored = await store.get('sid-race-0000000001')
    t.equal(stored?.refreshHash, outcomes[0] ? 'h1' : 'h2')
    t.equal(await store.rotate(session('sid-none-0000000001', 'h1'), 'h0'), false, 'no session, no rotation')
  })

  t.test('revocations reach this instance at once, others by pub/sub, and late subscribers from the record', async (t) => {
    const keyPrefix = nextPrefix()
    const a = new RedisSessionStore({ client: await client(t), keyPrefix })
    const b = new RedisSessionStore({ client: await client(t), keyPrefix })
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const seenByA: Revocation[] = []
    const seenByB: Revocation[] = []
    await a.onRevoke((revocations) => seenByA.push(...revocations))
    await b.onRevoke((revocations) => seenByB.push(...revocations))
    const inspector = await client(t)
    const listed = () => inspector.zrange(redisKeys.memberIndex(keyPrefix, CORP_A, 'zhangsan'), '0', '-1')
    await a.save(session('sid-revoke-00000001', 'h'))
    t.same(await listed(), ['sid-revoke-00000001'])

    const until = Date.now() + 60_000
    const revoking = a.revoke(['sid-revoke-00000001'], until)
    t.same(seenByA, [{ sid: 'sid-revoke-00000001', until }], 'delivered locally before Redis answers')
    await revoking
    t.ok(await eventually(1000, async () => seenByB.length > 0), 'delivered to the other instance')
    t.same(seenByB[0], { sid: 'sid-revoke-00000001', until })
    t.equal(await a.get('sid-revoke-00000001'), null, 'the session is gone')
    t.same(await listed(), [], 'and no longer listed for its member')

    await a.revoke(['sid-expired-0000001'], Date.now() - 1)
    const late = new RedisSessionStore({ client: await client(t), keyPrefix })
    t.teardown(() => late.close())
    const seenLate: Revocation[] = []
    await late.onRevoke((revocations) => seenLate.push(...revocations))
    t.same(seenLate, [{ sid: 'sid-revoke-00000001', until }], 'recorded revocations, live ones only, before onRevoke resolves')
  })

  t.test('revoke: the sessions the caller holds are not read again, and each member\'s index loses them in one command', async (t) => {
    const keyPrefix = nextPrefix()
    const connection = await client(t)
    const store = new RedisSessionStore({ client: connection, keyPrefix })
    t.teardown(() => store.close())
    const alice = ['sid-batch-alice-001', 'sid-batch-alice-002', 'sid-batch-alice-003'].map((sid) => session(sid, 'h'))
    const bob = { ...session('sid-batch-bob-00001', 'h'), userid: 'lisi' }
    for (const record of [...alice, bob]) await store.save(record)

    // Every command the store sends goes through sendCommand, scripts included: what reaches Redis.
    const sent: Array<{ name: string, args: string[] }> = []
    const sendCommand = connection.sendCommand
    connection.sendCommand = function (this: Redis, command, stream) {
      sent.push({ name: command.name, args: command.args.map(String) })
      return sendCommand.call(this, command, stream)
    }
    await store.revoke([...alice, bob], Date.now() + 60_000)
    connection.sendCommand = sendCommand

    t.same(sent.filter(({ name }) => name === 'get'), [], 'no session read again')
    const removals = sent.filter(({ name }) => name === 'zrem').map(({ args }) => args)
    t.same(removals.map(([index, ...sids]) => [index, sids.sort()]).sort(), [
      [redisKeys.memberIndex(keyPrefix, CORP_A, 'lisi'), [bob.sid]],
      [redisKeys.memberIndex(keyPrefix, CORP_A, 'zhangsan'), alice.map(({ sid }) => sid)]
    ].sort(), 'one ZREM per member, naming all its sids')
    for (const record of [...alice, bob]) t.equal(await store.get(record.sid), null, `${record.sid} is gone`)
    t.same(await connection.exists(redisKeys.memberIndex(keyPrefix, CORP_A, 'zhangsan'), redisKeys.memberIndex(keyPrefix, CORP_A, 'lisi')), 0,
      'and both indexes are empty')
  })

  t.test('rate counter: counts several calls at once, in a window that starts with the first', async (t) => {
    const keyPrefix = nextPrefix()
    const { rateCounter } = new RedisSessionStore({ client: await client(t), keyPrefix })
    const window = 60_000
    const first = await rateCounter.incr('budget', window, 5)
    t.equal(first.current, 5)
    const second = await rateCounter.incr('budget', window, 3)
    t.equal(second.current, 8, 'five, then three')
    // What is left of the window, not a new one: never more than the first said, and not far
    // below the window (a generous 10 s for a loaded machine between the two calls).
    t.ok(second.ttl <= first.ttl && second.ttl > window - 10_000, `ttl ${second.ttl} ms of ${window}`)
    t.equal((await rateCounter.incr('budget', window)).current, 9, 'one when not told')
    t.equal((await rateCounter.incr('other', window, 2)).current, 2, 'each key its own count')
  })

  t.test('callback deliveries: one instance claims, the others see it busy, then done', async (t) => {
    const keyPrefix = nextPrefix()
    const [a, b] = [new RedisSessionStore({ client: await client(t), keyPrefix }), new RedisSessionStore({ client: await client(t), keyPrefix })]
    const inspector = await client(t)
    // Long enough never to lapse on a loaded machine within the test.
    const lease = 60_000
    const claimed = idOf(await a.claimDelivery('corp:event-1', lease))
    t.same(await b.claimDelivery('corp:event-1', lease), { state: 'busy' }, 'another instance, while it is claimed')
    t.same(await a.claimDelivery('corp:event-1', lease), { state: 'busy' }, 'and the same instance')
    await a.settleDelivery('corp:event-1', claimed, true, 86_400_000)
    t.same(await b.claimDelivery('corp:event-1', lease), { state: 'done' }, 'done once settled')
    const pttl = await inspector.pttl(redisKeys.delivery(keyPrefix, 'corp:event-1'))
    t.ok(pttl > lease && pttl <= 86_400_000, `remembered for the ttl, not the lease (${pttl} ms)`)
    t.equal((await b.claimDelivery('corp:event-2', lease)).state, 'new', 'each delivery its own claim')

    await inspector.set(redisKeys.delivery(keyPrefix, 'corp:event-3'), '1', 'PX', 60_000)
    t.same(await a.claimDelivery('corp:event-3', lease), { state: 'done' }, 'what an earlier version remembered is done')
  })

  t.test('callback deliveries: a claim not done is released by its holder only, and lapses with its lease', async (t) => {
    const keyPrefix = nextPrefix()
    const [a, b] = [new RedisSessionStore({ client: await client(t), keyPrefix }), new RedisSessionStore({ client: await client(t), keyPrefix })]
    const lease = 60_000
    const first = idOf(await a.claimDelivery('corp:event-1', lease))
    await a.settleDelivery('corp:event-1', first, false, 86_400_000)
    const again = await b.claimDelivery('corp:event-1', lease)
    t.equal(again.state, 'new', 'released: the resend is acted on')

    // A holder that outlived its lease: the next one claims anew, and the late holder's release
    // leaves that claim alone. The short lease lapses by Redis's clock; waited for generously.
    const short = idOf(await a.claimDelivery('corp:event-2', 50))
    const claims: DeliveryClaim[] = []
    t.ok(await eventually(5000, async () => {
      claims.push(await b.claimDelivery('corp:event-2', lease))
      return claims.at(-1)?.state === 'new'
    }), 'a lapsed lease is claimed again')
    const next = idOf(claims.at(-1)!)
    t.not(next, short, 'under a new id')
    await a.settleDelivery('corp:event-2', short, false, 86_400_000)
    t.same(await a.claimDelivery('corp:event-2', lease), { state: 'busy' }, 'a stale id does not release another\'s claim')
    await b.settleDelivery('corp:event-2', next, false, 86_400_000)
    t.equal((await a.claimDelivery('corp:event-2', lease)).state, 'new', 'its holder\'s does')
  })

  t.test('callback deliveries: a claim is renewed by its holder only, while it holds it', async (t) => {
    const keyPrefix = nextPrefix()
    const [a, b] = [new RedisSessionStore({ client: await client(t), keyPrefix }), new RedisSessionStore({ client: await client(t), keyPrefix })]
    const id = idOf(await a.claimDelivery('corp:event-3', 60_000))
    t.equal(await b.renewDelivery('corp:event-3', 'another-id', 60_000), false, 'not by another id')
    t.equal(await b.renewDelivery('corp:event-3', id, 60_000), true, 'by its id, from any instance')
    await a.settleDelivery('corp:event-3', id, true, 86_400_000)
    t.equal(await a.renewDelivery('corp:event-3', id, 60_000), false, 'not once done')
    t.same(await b.claimDelivery('corp:event-3', 60_000), { state: 'done' }, 'and done stays done')
  })

  t.test('shared token: compare-and-delete and the refresh lock', async (t) => {
    const keyPrefix = nextPrefix()
    const { tokens } = new RedisSessionStore({ client: await client(t), keyPrefix })
    const expiresAt = Date.now() + 7_200_000
    const fetchedAt = Date.now()
    await tokens.write('corp:hash', { value: 'token-1', expiresAt, fetchedAt })
    t.same(await tokens.read('corp:hash'), { value: 'token-1', expiresAt, fetchedAt })
    await tokens.compareAndDelete('corp:hash', 'token-0')
    t.same(await tokens.read('corp:hash'), { value: 'token-1', expiresAt, fetchedAt }, 'another token is kept')
    await tokens.compareAndDelete('corp:hash', 'token-1')
    t.equal(await tokens.read('corp:hash'), null, 'the failed token is dropped')

    const order: string[] = []
    const holder = async (name: string) => await tokens.withLock('corp:hash', async () => {
      order.push(`${name} in`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      order.push(`${name} out`)
      return name
    })
    t.same(await Promise.all([holder('first'), holder('second')]), ['first', 'second'])
    t.same(order, ['first in', 'first out', 'second in', 'second out'], 'one holder at a time')
    await t.rejects(tokens.withLock('corp:hash', async () => { throw new Error('WeCom said no') }), { message: 'WeCom said no' },
      'the holder\'s own error passes through as is')
    t.equal(await tokens.withLock('corp:hash', async () => 'free'), 'free', 'and the lock was released')
  })

  t.test('fails fast while Redis cannot be reached', async (t) => {
    const unreachable = new Redis('redis://127.0.0.1:1', { lazyConnect: true })
    const store = new RedisSessionStore({ client: unreachable, keyPrefix: nextPrefix() })
    const started = Date.now()
    await t.rejects(store.get('sid-down-0000000001'), StoreDownError)
    await t.rejects(store.revoke(['sid-down-0000000001'], Date.now() + 1000), StoreDownError)
    await t.rejects(store.tokens.read('corp:hash'), SharedStoreError)
    await t.rejects(store.tokens.withLock('corp:hash', async () => 'never'), SharedStoreError)
    // Generous for a loaded CI box, as in redis/outage.ts: a wait for a timeout takes seconds.
    t.ok(Date.now() - started < 1000, 'at once, not after a timeout')
  })

  t.test('an injected client is never closed; the connection opened from a URL is', async (t) => {
    const inspector = await client(t)
    const injected = new Redis(redis.url, { connectionName: 'host-client' })
    t.teardown(() => injected.quit())
    const a = await redisApp(t, sim, { redis: injected, keyPrefix: nextPrefix() })
    t.equal((await a.login('zhangsan')).statusCode, 200)
    t.equal(await named(inspector, 'host-client'), 2, 'the client and the revocation subscriber')
    await a.close()
    t.equal(injected.status, 'ready')
    t.equal(await injected.ping(), 'PONG')
    t.ok(await eventually(1000, async () => await named(inspector, 'host-client') === 1), 'only the subscriber was closed')

    // A Redis of its own: the other tests of this file, running beside this one, hold
    // connections of the same name on the file's.
    const own = await startRedis(t)
    if (own === undefined) return
    const ownInspector = new Redis(own.url)
    t.teardown(() => ownInspector.quit())
    const b = await redisApp(t, sim, { redis: own.url, keyPrefix: nextPrefix() })
    t.equal((await b.login('zhangsan')).statusCode, 200)
    t.equal(await named(ownInspector, 'fastify-wecom-auth'), 2)
    await b.close()
    t.ok(await eventually(1000, async () => await named(ownInspector, 'fastify-wecom-auth') === 0), 'its own connections are closed')
  })

  t.test('the host\'s @fastify/redis is reused and left open, unless store.redis is false', async (t) => {
    const inspector = await client(t)
    // The host keeps closing its client to itself (closeClient false): ours must not close it either.
    const hostClient = new Redis(redis.url, { connectionName: 'host-app' })
    t.teardown(() => hostClient.quit())
    const build = async (store: { redis?: false, keyPrefix: string }) => {
      const { stream, capture } = captureLogs()
      const app = Fastify({ logger: { level: 'info', stream } })
      await app.register(fastifyRedis, { client: hostClient })
      await app.register(fastifyWecomAuth, {
        corps: [{ corpId: CORP_A, secret: SECRET_A }],
        jwt: { secret: JWT_SECRET },
        api: { baseUrl: sim.url, timeout: PATIENT_TIMEOUT },
        store
      })
      await app.ready()
      const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
      t.equal(login.statusCode, 200)
      return { app, logs: capture }
    }

    const reusing = nextPrefix()
    const { app, logs } = await build({ keyPrefix: reusing })
    t.ok(logs.records.some((record) => record.level === 30 && /host's Redis/.test(String(record.msg))), 'said so at info')
    t.ok((await inspector.keys(`${reusing}session:*`)).length > 0, 'sessions are in the host\'s Redis')
    t.equal(await named(inspector, 'host-app'), 2, 'the host\'s client and the revocation subscriber')
    await app.close()
    t.equal(hostClient.status, 'ready')
    t.equal(await hostClient.ping(), 'PONG')
    t.ok(await eventually(1000, async () => await named(inspector, 'host-app') === 1), 'only the subscriber was closed')

    const optedOut = nextPrefix()
    const memory = await build({ redis: false, keyPrefix: optedOut })
    t.teardown(() => memory.app.close())
    t.same(await inspector.keys(`${optedOut}*`), [], 'store.redis false keeps sessions in process')
  })

  t.test('a URL store beside the host\'s @fastify/redis leaves app.redis to the host', async (t) => {
    const app = Fastify()
    await app.register(fastifyRedis, { url: `${redis.url}/1` })
    const hostClient = app.redis
    const keyPrefix = nextPrefix()
    await app.register(fastifyWecomAuth, {
      corps: [{ corpId: CORP_A, secret: SECRET_A }],
      jwt: { secret: JWT_SECRET },
      api: { baseUrl: sim.url, timeout: PATIENT_TIMEOUT },
      store: { redis: `${redis.url}/0`, keyPrefix }
    })
    t.teardown(() => app.close())
    await app.ready()
    t.equal(app.redis, hostClient)
    const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
    t.equal(login.statusCode, 200)
    t.same(await app.redis.keys(`${keyPrefix}*`), [], 'nothing in the host\'s database')
    t.ok((await (await client(t)).keys(`${keyPrefix}session:*`)).length > 0, 'sessions in the configured one')
  })

  t.test('one warning at boot when the Redis persists nothing; none when it does, or when CONFIG is refused', async (t) => {
    const inspector = await client(t)
    const boot = async (url: string): Promise<LogCapture> => {
      const { app, logs } = await buildApp({ store: { redis: url, keyPrefix: nextPrefix() } }, sim)
      t.teardown(() => app.close())
      await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
      return logs
    }
    const warnings = (logs: LogCapture) => logs.records.filter((record) => record.level === 40 && /persists nothing/.test(String(record.msg)))

    // The test server runs with --save '' --appendonly no.
    const volatile = await boot(redis.url)
    t.equal(warnings(volatile).length, 1, 'one warning')
    t.match(String(warnings(volatile)[0].msg), /appendonly yes with appendfsync everysec/, 'saying what to set')

    await inspector.config('SET', 'save', '3600 1')
    try {
      t.equal(warnings(await boot(redis.url)).length, 0, 'RDB save points: something is kept')
    } finally {
      await inspector.config('SET', 'save', '')
    }

    // Like a managed Redis: every command but CONFIG.
    await inspector.acl('SETUSER', 'limited', 'on', '>limited-password-0123', '~*', '&*', '+@all', '-config')
    const refused = await boot(redis.url.replace('redis://', 'redis://limited:limited-password-0123@'))
    t.equal(warnings(refused).length, 0, 'CONFIG refused: no warning')
    t.ok(refused.records.some((record) => record.level === 20 && /could not read the Redis persistence/.test(String(record.msg))), 'only a debug line')
    t.notOk(refused.lines.join('\n').includes('limited-password-0123'), 'which does not carry the password')
  })
}
