import { createWecomSimulator, TRANSIENT_FAULTS, type WecomEndpoint, type WecomSimulator } from 'fastify-wecom-auth/testing'
import { Pool } from 'undici'
import { CORP_A, LATENCY, SOAK_TIMEOUT, memberId, simulatedCorps } from '../fixtures.js'
import { spawnServer, type ServerHandle } from '../harness.js'
import { fixed, ms, target, type Section } from '../report.js'

const LOGINS = Number(process.env.BENCH_SOAK_LOGINS ?? 10_000)
const CONCURRENCY = 64
/** A login makes two calls (jscode2session, user/get): each meets a fault with this chance, one login in about 20. */
const SHARE = 0.025
/** The bound of issue 7: every login answered within api.timeout + 200 ms. */
const BOUND = SOAK_TIMEOUT + 200
/** Issue 17: with one transient fault in 5% of logins, at least this share of all logins succeed. */
const AVAILABILITY = 0.94

/** Every later call of the login's endpoints meets one of the faults with SHARE chance, seeded. */
function mixFaults (sim: WecomSimulator): void {
  let seed = 7
  for (const endpoint of ['jscode2session', 'user/get'] as WecomEndpoint[]) {
    sim.mixFaults(endpoint, { share: SHARE, faults: Object.values(TRANSIENT_FAULTS), seed: seed++ })
  }
}

interface Tally { statuses: Map<number, number>, latencies: number[], over: number }

async function soak (sim: WecomSimulator, server: ServerHandle, from: number, count: number, tally: Tally): Promise<void> {
  const pool = new Pool(server.url, { connections: CONCURRENCY })
  let next = from
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < from + count) {
        const body = JSON.stringify({ code: sim.issueCode(CORP_A.corpId, memberId(next++)) })
        const started = performance.now()
        const res = await pool.request({ method: 'POST', path: '/wecom/login', headers: { 'content-type': 'application/json' }, body })
        await res.body.dump()
        const took = performance.now() - started
        tally.latencies.push(took)
        if (took > BOUND) tally.over++
        tally.statuses.set(res.statusCode, (tally.statuses.get(res.statusCode) ?? 0) + 1)
      }
    }))
  } finally {
    await pool.close()
  }
}

/**
 * Scenario 6: WeCom's bad days. 10,000 logins at 64 concurrent while about one login in 20 meets
 * one transient fault of WeCom's: -1, a hang, a connection reset, an HTML page, 42001 or 40014
 * (api.timeout 1000 ms). At least 94% of all logins succeed (a fault costs the login it hit and no
 * more), every login is answered within api.timeout + 200 ms, none with a 500, with no unhandled
 * rejection in the server, and a heap that does not grow from the first half to the second.
 */
export async function faultsScenario (): Promise<Section> {
  const sim = await createWecomSimulator({ corps: simulatedCorps(), latency: LATENCY })
  const server = await spawnServer({ simUrl: sim.url, faults: true })
  const tally: Tally = { statuses: new Map(), latencies: [], over: 0 }
  try {
    mixFaults(sim)
    const half = Math.floor(LOGINS / 2)
    await soak(sim, server, 0, half, tally)
    const first = await server.ask({ type: 'memory' })
    await soak(sim, server, half, LOGINS - half, tally)
    const second = await server.ask({ type: 'memory' })

    tally.latencies.sort((a, b) => a - b)
    const at = (p: number) => tally.latencies[Math.min(tally.latencies.length - 1, Math.ceil(p * tally.latencies.length) - 1)]
    const worst = tally.latencies[tally.latencies.length - 1]
    const errors = tally.statuses.get(500) ?? 0
    const heapGrowth = second.usage.heapUsed / first.usage.heapUsed - 1
    const statuses = [...tally.statuses].sort(([a], [b]) => a - b)
    const ok = tally.statuses.get(200) ?? 0
    const met = sim.faultsMet
    const availability = ok / LOGINS
    return {
      title: '6. WeCom\'s bad days: a fault soak',
      about: `${LOGINS} logins at ${CONCURRENCY} concurrent through POST /wecom/login, while each jscode2session and user/get call ` +
        `meets, with ${SHARE * 100}% chance (about one login in ${Math.round(1 / (2 * SHARE))}), one of: ${Object.keys(TRANSIENT_FAULTS).join(', ')}; ` +
        `api.timeout ${SOAK_TIMEOUT} ms, breaker on (defaults), simulator latency ${LATENCY} ms. Latency is measured per login from the client.`,
      head: ['answer', 'logins'],
      rows: statuses.map(([status, count]) => [String(status), count]),
      lines: [
        target('availability: logins answered 200, of all logins', `${ok} of ${LOGINS} (${fixed(availability * 100, 1)}%)`, `at least ${AVAILABILITY * 100}%`, availability >= AVAILABILITY),
        target('logins not answered 200, against the faults met', `${LOGINS - ok} for ${met} faults`, 'at most one per fault: a fault costs only its login', LOGINS - ok <= met),
        `latency p50 ${ms(at(0.5))}, p99 ${ms(at(0.99))}, worst ${ms(worst)}`,
        target('logins answered later than api.timeout + 200 ms', String(tally.over), '0', tally.over === 0),
        target('answers with status 500', String(errors), '0', errors === 0),
        target('unhandled rejections in the server', String(second.unhandledRejections), '0', second.unhandledRejections === 0),
        target('heap used, second half against the first', `${fixed(first.usage.heapUsed / 2 ** 20, 1)} → ${fixed(second.usage.heapUsed / 2 ** 20, 1)} MiB (${fixed(heapGrowth * 100, 1)}%)`, 'flat: under +10%', heapGrowth < 0.1),
        `faults met: ${met}; WeCom calls: gettoken ${sim.calls.gettoken}, jscode2session ${sim.calls.jscode2session}, user/get ${sim.calls['user/get']}`
      ]
    }
  } finally {
    await server.close()
    await sim.close()
  }
}
