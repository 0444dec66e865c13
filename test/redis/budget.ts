import t, { type Test } from 'tap'
import { startRedis } from '../helpers/redis.js'
import { buildApp, CORP_A, inWaves, startSimulator } from '../helpers/setup.js'

// The outbound budget (api.budget) and a client's share of it (api.clientShare) hold across
// instances sharing Redis: four instances spend what one would (issue 17). Each test counts WeCom's
// calls on a simulator of its own: the tests of this folder run side by side (helpers/group.ts).
const redis = await startRedis(t)
if (redis !== undefined) {
  const simulator = async (t: Test) => {
    const sim = await startSimulator(t)
    const login = (app: Awaited<ReturnType<typeof buildApp>>['app'], remoteAddress = '198.51.100.1') =>
      app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') }, remoteAddress })
    return { sim, login }
  }

  t.test('four instances on one Redis spend one api.budget, not four', async (t) => {
    const { sim, login } = await simulator(t)
    const budget = 12
    const options = { store: { redis: redis.url, keyPrefix: 'budget-1:' }, api: { budget } }
    const apps = await Promise.all(Array.from({ length: 4 }, () => buildApp(options, sim)))
    t.teardown(() => Promise.all(apps.map(({ app }) => app.close())))
    sim.resetCalls()
    const answers = await inWaves(40, (i) => login(apps[i % 4].app))
    const ok = answers.filter((res) => res.statusCode === 200).length
    t.ok(sim.calls.jscode2session <= budget, `${sim.calls.jscode2session} jscode2session calls for a budget of ${budget}`)
    t.ok(sim.calls['user/get'] <= budget, `${sim.calls['user/get']} user/get calls`)
    t.ok(ok >= 1 && ok <= budget, `${ok} logins succeeded`)
    t.ok(answers.every((res) => res.statusCode === 200 || res.statusCode === 503), 'the others 503')
    const refused = answers.find((res) => res.statusCode === 503)!
    t.equal(refused.json().code, 'WECOM_UNAVAILABLE')
    t.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 60, 'Retry-After: what is left of the minute')
  })

  t.test('a client\'s share of the budget holds across instances; another client logs in', async (t) => {
    const { sim, login } = await simulator(t)
    // A quarter of 400: 100 a minute for one address (never below 100: see clientBudget).
    const options = { store: { redis: redis.url, keyPrefix: 'budget-2:' }, api: { budget: 400, clientShare: 0.25 } }
    const apps = await Promise.all([buildApp(options, sim), buildApp(options, sim)])
    t.teardown(() => Promise.all(apps.map(({ app }) => app.close())))
    sim.resetCalls()
    const answers = await inWaves(120, (i) => login(apps[i % 2].app, '203.0.113.7'))
    t.equal(answers.filter((res) => res.statusCode === 200).length, 100, 'a quarter of 400, across both instances')
    t.equal(sim.calls.jscode2session, 100, 'the refused ones spent no code')
    t.equal((await login(apps[1].app, '198.51.100.2')).statusCode, 200, 'another client has its own share')
  })

  t.test('Redis down: each instance counts its budget by itself', async (t) => {
    const { sim, login } = await simulator(t)
    const scratch = await startRedis(t)
    if (scratch === undefined) return
    const { app } = await buildApp({ store: { redis: scratch.url }, api: { budget: 3 } }, sim)
    t.teardown(() => app.close())
    t.equal((await login(app)).statusCode, 200)
    await scratch.stop()
    // The session store is down too, so logins cannot end in 200: what counts is WeCom's calls.
    sim.resetCalls()
    for (let i = 0; i < 6; i++) await login(app)
    t.ok(sim.calls.jscode2session <= 3, `${sim.calls.jscode2session} jscode2session calls while Redis is down`)
  })
}
