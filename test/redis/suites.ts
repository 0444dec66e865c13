import { Redis } from 'ioredis'
import t from 'tap'
import { redisKeys } from '../../src/stores/redis/keys.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { installAcrossInstances, installedOnRedis } from '../helpers/provider-instances.js'
import { redisApp, startRedis, type RedisApp } from '../helpers/redis.js'
import { CORP_A, SECRET_A, simulatorCorps } from '../helpers/setup.js'
import { now, OTHER, SEAL_KEYS, SUITE, suiteOptions, ticketPush } from '../helpers/suites.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('suite_ticket pushes to two instances on one Redis: the newest by TimeStamp is the suite\'s, whichever came last', async (t) => {
    const sim = await createWecomSimulator({ corps: simulatorCorps() })
    t.teardown(() => sim.close())
    const store = { redis: redis.url, keyPrefix: 'suites:' }
    const a = await redisApp(t, sim, store, suiteOptions)
    const b = await redisApp(t, sim, store, suiteOptions)
    const inspector = new Redis(redis.url)
    t.teardown(() => inspector.disconnect())
    const stored = () => inspector.get(redisKeys.suiteTicket('suites:', SUITE.suiteId))

    const stamp = now() - 900
    t.equal((await a.app.inject(ticketPush(SUITE, 'ticket-new', stamp))).body, 'success')
    t.equal((await b.app.inject(ticketPush(SUITE, 'ticket-old', stamp - 300))).body, 'success', 'the late one, on the other instance')
    t.equal(await stored(), `${stamp}.ticket-new`, 'the newer one stays')
    t.equal((await b.app.inject(ticketPush(SUITE, 'ticket-newer', stamp + 600))).body, 'success')
    t.equal(await stored(), `${stamp + 600}.ticket-newer`)
    // Pushed 5 minutes ago: 25 minutes left of WeCom's 30 (a second either way for the run).
    const ttl = await inspector.pttl(redisKeys.suiteTicket('suites:', SUITE.suiteId))
    t.ok(ttl > 24 * 60_000 && ttl <= 25 * 60_000 + 1000, `kept until 30 minutes after its TimeStamp (${ttl} ms left)`)

    // Closed first: a client left connected to a stopped Redis reports every reconnection attempt.
    await inspector.quit()
    await redis.stop()
    const down = await a.app.inject(ticketPush(SUITE, 'ticket-lost', stamp + 800))
    t.equal(down.statusCode, 503, 'Redis down: not acknowledged, WeCom resends')
    t.equal(down.json().code, 'WECOM_STORE_UNAVAILABLE')
    await redis.start()
  })
}

if (redis !== undefined) {
  // A Redis of its own: the test above stops and starts the file's, and the tests of a folder run side by side (group.ts).
  t.test('install → login → uninstall on two instances sharing Redis: the corp\'s sessions refused on both within 1 s, its code never in clear', async (t) => {
    const own = (await startRedis(t))!
    await installAcrossInstances(t, { redis: own.url, keyPrefix: 'installs:' }, [own.url])
  })
}

if (redis !== undefined) {
  t.test('a suite no longer served (suites changed while its sessions live): their refresh refused, the session ended', async (t) => {
    const own = (await startRedis(t))!
    const { instances, login } = await installedOnRedis(t, { redis: own.url, keyPrefix: 'served:' }, [{}, { corps: [{ corpId: CORP_A, secret: SECRET_A }], provider: undefined, suites: undefined, sealKeys: undefined }, { suites: [OTHER] }])
    const [a, withoutSuites, otherSuite] = instances as [RedisApp, RedisApp, RedisApp]
    const sessions = [(await login(a)).json(), (await login(a)).json()]

    for (const [app, session, why] of [[withoutSuites, sessions[0], 'no suites'], [otherSuite, sessions[1], 'another suite']] as const) {
      t.equal((await app.refresh(session.refresh_token)).json().code, 'WECOM_CORP_NOT_ALLOWED', `${why}: refused`)
      t.equal((await a.refresh(session.refresh_token)).json().code, 'WECOM_REFRESH_INVALID', `${why}: and the session ended`)
    }
  })
}

if (redis !== undefined) {
  t.test('sealKeys: a code no key of an instance opens is a 503 and an error logged, not an uninstall; the sessions live on', async (t) => {
    const own = (await startRedis(t))!
    const NEW = 'a-new-seal-key-of-at-least-32-characters'
    // Installed through the rotated instance, the first: sealed with the new key.
    const { sim, instances, login } = await installedOnRedis(t, { redis: own.url, keyPrefix: 'sealed:' }, [{ sealKeys: [NEW, ...SEAL_KEYS] }, { sealKeys: SEAL_KEYS }])
    const [rotated, stale] = instances as [RedisApp, RedisApp]
    const session = (await login(rotated)).json()

    const refused = await stale.refresh(session.refresh_token)
    t.equal(refused.statusCode, 503, 'the instance without the new key cannot open the code')
    t.equal(refused.json().code, 'WECOM_UNAVAILABLE')
    t.equal((await login(stale)).statusCode, 503)
    t.ok(stale.logs.records.some((r) => /none of sealKeys opens/.test(String(r.msg)) && r.level === 50), 'an error naming the fix')
    t.equal((await rotated.refresh(session.refresh_token)).statusCode, 200, 'the session was not ended')

    // change_auth reaching the instance that cannot open the code: not acknowledged, so that WeCom
    // sends it again, and the same error logged; not "no install kept; ignored".
    await sim.connectSuites(`${await stale.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
    const changed = await sim.pushSuite(SUITE.suiteId, { InfoType: 'change_auth', AuthCorpId: CORP_A })
    t.not(changed?.body, 'success', 'change_auth not acknowledged')
    t.notOk(stale.logs.records.some((r) => /no install kept/.test(String(r.msg))), 'not taken for a corp without an install')
  })
}
