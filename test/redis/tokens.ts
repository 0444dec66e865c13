import t from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, CORP_B, simulatorCorps } from '../helpers/setup.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('two instances on one Redis share the WeCom access token', async (t) => {
    const sim = await createWecomSimulator({ corps: simulatorCorps(), latency: 20 })
    t.teardown(() => sim.close())
    const store = { redis: redis.url, keyPrefix: 'tokens:' }
    // 20 concurrent logins through one Redis lock, under the harness's patient api.timeout: what is
    // checked here is sharing, not speed.
    const a = await redisApp(t, sim, store)
    const b = await redisApp(t, sim, store)

    const logins = await Promise.all([a, b].flatMap((app) => Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0 ? app.login('zhangsan', CORP_A) : app.login('zhaoliu', CORP_B))))
    t.same(new Set(logins.map((login) => login.statusCode)), new Set([200]))
    t.equal(sim.calls.gettoken, 2, 'cold and concurrent: one gettoken per corp for both instances')

    // WeCom ends the token early: A renews it; B's copy fails too, but B must not delete A's new
    // token from Redis, nor ask WeCom again.
    sim.expireTokens(CORP_A)
    t.equal((await a.login('zhangsan')).statusCode, 200)
    t.equal(sim.calls.gettoken, 3)
    t.equal((await b.login('zhangsan')).statusCode, 200)
    t.equal(sim.calls.gettoken, 3, 'B picked up the token A renewed')
  })
}
