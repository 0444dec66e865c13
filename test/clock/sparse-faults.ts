import t, { type Test } from 'tap'
import { TRANSIENT_FAULTS, type SimulatedFault } from '../../src/testing/simulator.js'
import { CORP_A, setup } from '../helpers/setup.js'

// A sparse fault costs the login it hit and no more, unless WeCom really said something about the
// whole app (issue 17): before, one 42001 in 5% of logins locked every login out for a minute.

const LOGINS = 300
/**
 * Logins that met no fault and still failed, at the most: a login slower than api.timeout on a
 * saturated machine (timers were seen firing 2.3 s late at a load of 14). Before the fix a sparse
 * token error cost about a third of all logins, far beyond it.
 */
const SLACK = 3
const CONCURRENCY = 16
/** One fault in about 5% of logins: each makes two calls, each meets a fault with this chance. */
const SHARE = 0.025

async function soak (t: Test, faults: SimulatedFault[], seed: number) {
  // api.timeout 15 s: a hang costs its login that long. The rest are loopback calls of a few ms,
  // but a login is refused at once when the calls it has left look longer than its time left (it
  // must not spend the member's code on jscode2session for nothing), and on a saturated machine a
  // loopback call was seen taking over 2 s: at 5 s, a load of 8 had 83 logins refused so, in the
  // second the estimate said no. 15 s keeps that for overloads three times worse.
  const h = await setup(t, { api: { timeout: 15_000, budget: false }, rateLimit: false })
  t.equal((await h.login('zhangsan')).statusCode, 200)
  for (const endpoint of ['jscode2session', 'user/get'] as const) h.sim.mixFaults(endpoint, { share: SHARE, faults, seed: seed++ })
  const statuses: number[] = []
  // What the failed ones answered, for the message of a failure.
  const failures = new Map<string, number>()
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < LOGINS) {
      next++
      const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: h.sim.issueCode(CORP_A, 'zhangsan') } })
      statuses.push(res.statusCode)
      if (res.statusCode !== 200) {
        const answer = `${res.statusCode} ${res.json<{ code?: string }>().code}`
        failures.set(answer, (failures.get(answer) ?? 0) + 1)
      }
    }
  }))
  const failed = [...failures].map(([answer, count]) => `${count}× ${answer}`).join(', ')
  return { ok: statuses.filter((status) => status === 200).length, met: h.sim.faultsMet, gettoken: h.sim.calls.gettoken, failed, h }
}

for (const [name, fault] of Object.entries(TRANSIENT_FAULTS)) {
  t.test(`${name} in about 5% of logins costs only the logins it hit`, async (t) => {
    const { ok, met, failed, h } = await soak(t, [fault], 7)
    t.ok(met > 0, `${met} faults met`)
    t.ok(ok >= LOGINS - met - SLACK, `${ok} of ${LOGINS} logins succeeded; ${met} met a fault; failed: ${failed}`)
    t.notOk(h.logs.records.some((r) => /refused this app|breaker open/.test(String(r.msg))), 'no window, no breaker')
  })
}

t.test('every kind mixed, one fault in about 5% of logins: at least 94% of all logins succeed', async (t) => {
  const { ok, met, gettoken, failed } = await soak(t, Object.values(TRANSIENT_FAULTS), 11)
  t.ok(ok >= 0.94 * LOGINS, `${ok} of ${LOGINS} succeeded (${met} faults met; failed: ${failed})`)
  t.ok(ok >= LOGINS - met - SLACK, 'every login that met no fault succeeded')
  t.ok(gettoken <= 1 + met, `${gettoken} gettoken calls: at most one per token fault`)
})
