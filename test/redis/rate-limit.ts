import t from 'tap'
import { startRedis } from '../helpers/redis.js'
import { buildApp, inWaves, simulatorCorps, startSimulator } from '../helpers/setup.js'

// Each test has a simulator of its own, whose calls it may count: the tests of this folder run
// side by side (helpers/group.ts).
const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('two instances on one Redis share one count per client; a client elsewhere is not touched', async (t) => {
    const sim = await startSimulator(t)
    const max = 30
    const options = { store: { redis: redis.url, keyPrefix: 'rate-1:' }, rateLimit: { max, timeWindow: 60_000 } }
    const apps = await Promise.all([buildApp(options, sim), buildApp(options, sim)])
    t.teardown(() => Promise.all(apps.map(({ app }) => app.close())))
    const answers = await inWaves(120, (i) => apps[i % 2].app.inject({
      method: 'POST', url: '/wecom/login', payload: { code: `made-up-${i}` }, remoteAddress: '203.0.113.9'
    }))
    const limited = answers.filter((r) => r.statusCode === 429)
    t.equal(limited.length, 120 - max, 'one count across both instances')
    t.ok(sim.calls.jscode2session <= max, `${sim.calls.jscode2session} jscode2session calls`)
    t.equal(limited[0].json().code, 'WECOM_RATE_LIMITED')
    const other = await apps[1].app.inject({
      method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(simulatorCorps()[0].corpId, 'zhangsan') }, remoteAddress: '198.51.100.1'
    })
    t.equal(other.statusCode, 200)
  })

  t.test('Redis down: each instance goes on counting by itself', async (t) => {
    const sim = await startSimulator(t)
    const scratch = await startRedis(t)
    if (scratch === undefined) return
    const { app } = await buildApp({ store: { redis: scratch.url }, rateLimit: { max: 3, timeWindow: 60_000 } }, sim)
    t.teardown(() => app.close())
    await scratch.stop()
    const codes = []
    for (let i = 0; i < 5; i++) {
      codes.push((await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: `x${i}` } })).statusCode)
    }
    t.same(codes.slice(3), [429, 429], 'still limited while Redis is down')
    t.notOk(codes.includes(500))
  })
}
