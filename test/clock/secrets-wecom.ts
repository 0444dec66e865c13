import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { assertNoSecrets, seenAccessTokens } from '../helpers/secrets.js'
import { CORP_A, JWT_SECRET, SECRET_A, SECRET_B, setup } from '../helpers/setup.js'

// The bad-day paths (deadline, breaker, remembered refusals, back-off, budget, rate limit) with the
// logger at trace: their once-per-change lines and their answers carry no secret either.
t.test('no secret in what WeCom\'s bad days log or answer', async (t) => {
  const h = await setup(t, {
    // api.timeout 1 s, not less: at a load of 13 a 300-ms deadline once ran out before jscode2session
    // was sent, so no failure was counted and the breaker (this test's precondition) never opened.
    api: { timeout: 1000, breaker: { failures: 3, coolDown: 200 }, refusals: { config: 100, frequency: 100, concurrency: 100 }, budget: 40 },
    rateLimit: { max: 60, timeWindow: 60_000 }
  })
  const responses: LightMyRequestResponse[] = []
  const wecomTokens = new Set<string>()
  const sessionKeys = new Set<string>()
  const login = async (payload?: object) => {
    const res = await (payload === undefined ? h.login('zhangsan') : h.app.inject({ method: 'POST', url: '/wecom/login', payload }))
    responses.push(res)
    seenAccessTokens(h.sim, wecomTokens)
    const key = h.sim.sessionKey(CORP_A, 'zhangsan')
    if (key !== undefined) sessionKeys.add(key)
    return res
  }
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  await login()
  for (const fault of [{ trickle: 100 }, { timeout: true as const }, { drop: true as const }, { malformed: true as const }]) {
    h.sim.inject('jscode2session', fault, 4)
    for (let i = 0; i < 4; i++) await login()
    h.sim.clearFaults()
    await pause(250)
    await login()
  }
  for (const errcode of [45009, 45033, 40014, 60020, -1]) {
    h.sim.inject('jscode2session', { errcode }, Infinity)
    for (let i = 0; i < 3; i++) await login()
    h.sim.clearFaults()
    // After 40014 refused a fresh token, gettoken backs off for 1 s: the next phase needs a token.
    await pause(errcode === 40014 ? 1100 : 150)
  }
  h.sim.addCorp({ corpId: CORP_A, secret: 'reset-secret', members: [{ userid: 'zhangsan' }] })
  h.sim.expireTokens()
  for (let i = 0; i < 3; i++) await login()
  h.sim.inject('gettoken', { drop: true }, 2)
  await login()
  await login()
  while ((await login({ code: 'spend-the-rest' })).statusCode !== 429) { /* up to the rate limit */ }
  await h.app.close()

  t.ok(h.logs.records.some((r) => /breaker open/.test(String(r.msg))), 'the breaker opened')
  t.ok(h.logs.records.some((r) => /refused this app/.test(String(r.msg))), 'a refusal was remembered')
  t.ok(responses.some((r) => r.statusCode === 429), 'the rate limit answered')
  assertNoSecrets(t, h.logs.lines, responses, [
    ['corp secret', new Set([SECRET_A, SECRET_B, 'reset-secret'])],
    ['JWT secret', new Set([JWT_SECRET])],
    ['WeCom access token', wecomTokens],
    ['session_key', sessionKeys]
  ])
})
