import { createWecomSimulator } from 'fastify-wecom-auth/testing'
import { LATENCY, ROUNDS, simulatedCorps } from '../fixtures.js'
import { loginLoad, median, rounds, spawnServer } from '../harness.js'
import { fixed, ms, target, type Section } from '../report.js'

const VARIANTS = ['plugin', 'baseline'] as const
const PATHS = { plugin: '/wecom/login', baseline: '/baseline/login' } as const
const LOGINS = 1000
/** Every run starts a fresh process (about 2 s): three are enough for a count that should not vary. */
const STAMPEDE_ROUNDS = Math.min(ROUNDS, 3)

/** Scenario 3: a fresh process, so an empty token cache, meets 1,000 logins at once. */
export async function stampedeScenario (): Promise<Section> {
  const sim = await createWecomSimulator({ corps: simulatedCorps(), latency: LATENCY })
  try {
    const runs = await rounds(VARIANTS, STAMPEDE_ROUNDS, async (variant) => {
      const server = await spawnServer({ simUrl: sim.url })
      try {
        return await loginLoad(sim, { urls: [server.url], path: PATHS[variant], connections: LOGINS, count: LOGINS })
      } finally {
        await server.close()
      }
    })
    const worst = Math.max(...runs.plugin.map((r) => r.gettoken))
    return {
      title: '3. Cold-start stampede',
      about: `A freshly started server process receives ${LOGINS} concurrent logins (one per connection, all sent at once) ` +
        `with nothing cached; the simulator counts gettoken calls. A new process per run, ${STAMPEDE_ROUNDS} rounds, ${LATENCY} ms per WeCom call.`,
      head: ['variant', 'gettoken calls (median)', 'gettoken calls (worst)', 'succeeded', 'failed', 'all answered in', 'p50', 'p99'],
      rows: VARIANTS.map((variant) => {
        const series = runs[variant]
        return [
          variant,
          fixed(median(series.map((r) => r.gettoken))),
          Math.max(...series.map((r) => r.gettoken)),
          fixed(median(series.map((r) => r.ok))),
          series.reduce((n, r) => n + r.failed, 0),
          `${fixed(median(series.map((r) => r.seconds)), 2)} s`,
          ms(median(series.map((r) => r.p50))),
          ms(median(series.map((r) => r.p99)))
        ]
      }),
      lines: [target('plugin gettoken calls for 1,000 cold logins (worst round)', String(worst), '1', worst === 1)]
    }
  } finally {
    await sim.close()
  }
}
