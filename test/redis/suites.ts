import { Redis } from 'ioredis'
import t from 'tap'
import { redisKeys } from '../../src/stores/redis/keys.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, simulatorCorps } from '../helpers/setup.js'
import { now, OTHER, PROVIDER, SUITE, suiteOptions, ticketPush } from '../helpers/suites.js'

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
    const sim = await createWecomSimulator({ corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
    t.teardown(() => sim.close())
    const store = { redis: own.url, keyPrefix: 'installs:' }
    const options = { ...suiteOptions, corps: undefined }
    const a = await redisApp(t, sim, store, options)
    const b = await redisApp(t, sim, store, options)
    await sim.connectSuites(`${await a.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
    // As WeCom resends a push not acknowledged: a loaded run can hold a Redis reply past the store's
    // 1 s command timeout, and the push is then answered 503 (WECOM_STORE_UNAVAILABLE), as it should.
    const acknowledged = async (push: () => Promise<{ status: number } | undefined>): Promise<boolean> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        if ((await push())?.status === 200) return true
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      return false
    }
    t.ok(await acknowledged(async () => (await sim.pushSuiteTicket(SUITE.suiteId)).answer))
    t.ok(await acknowledged(() => sim.install(CORP_A, { suiteId: SUITE.suiteId })), 'pushed to instance a')
    const code = sim.permanentCode(CORP_A, { suiteId: SUITE.suiteId })!

    const login = (app: typeof a, userid: string) => app.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, userid), suiteId: SUITE.suiteId } })
    const onB = await login(b, 'zhangsan')
    t.equal(onB.statusCode, 200, 'instance b knows the install, and the suite_ticket a kept')
    const onA = await login(a, 'zhangsan')
    t.equal(onA.statusCode, 200)
    t.equal(sim.calls['service/get_corp_token'], 1, 'one corp token for both instances')
    t.equal(sim.calls['service/get_suite_token'], 1, 'one suite token for both instances')
    t.same((await b.app.wecom.corps()).map(({ corpId }) => corpId), [CORP_A])

    const inspector = new Redis(own.url)
    t.teardown(() => inspector.disconnect())
    const keys = await inspector.keys('installs:*')
    const read = async (key: string): Promise<unknown> => {
      const type = await inspector.type(key)
      if (type === 'hash') return await inspector.hgetall(key)
      if (type === 'zset') return await inspector.zrange(key, '0', '-1')
      if (type === 'set') return await inspector.smembers(key)
      if (type === 'list') return await inspector.lrange(key, 0, -1)
      return await inspector.get(key)
    }
    const values = await Promise.all(keys.map(async (key) => JSON.stringify(await read(key))))
    t.ok(keys.some((key) => key.startsWith('installs:suite-corps:')), 'the install is in Redis')
    t.notOk(values.some((value) => value.includes(code)), 'the permanent code is sealed in Redis')

    t.ok(await acknowledged(() => sim.pushSuite(SUITE.suiteId, { InfoType: 'cancel_auth', AuthCorpId: CORP_A })), 'cancel_auth pushed to instance a')
    // The refusal reaches b through Redis's revocation feed; 1 s is the issue's bound.
    t.ok(await eventually(1000, async () => (await b.me(onB.json().access_token)).statusCode === 401), 'b refuses its session\'s token within 1 s')
    t.equal((await b.me(onA.json().access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'and a\'s')
    t.equal((await b.refresh(onB.json().refresh_token)).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no refresh on b')
    t.equal((await login(b, 'zhangsan')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no login on b')
    t.same(await a.app.wecom.corps(), [])
    await inspector.quit()
  })
}
