import { spawnServer, type ServerHandle } from '../harness.js'
import type { FromServer } from '../protocol.js'
import { fixed, type Section } from '../report.js'

const LOGINS = 200_000
const STEP = 50_000
const MiB = 1024 * 1024
/** Levelled off: the last STEP logins grew the heap by under this share of what it held. */
const LEVEL = 0.02
/**
 * ms idle before the settled readings of the last two steps: V8's memory reducer compacts the heap
 * and hands back the pages a burst left committed about 8 s after allocation slows (measured here:
 * RSS 382 → 279 MiB ten seconds after the burst of 150,000 logins, 365 → 279 MiB after 200,000).
 */
const SETTLE = 12_000
const thousands = (n: number) => n.toLocaleString('en')
const mib = (bytes: number) => fixed(bytes / MiB, 1)

type Sample = Omit<Extract<FromServer, { type: 'memory' }>, 'type'> & { after: number, settled: boolean }

/**
 * Scenario 5: memory of a server along 200,000 logins, each by a member never seen before (the
 * worst case for every per-member map), WeCom answered in-process by WecomStub.
 */
export async function memoryScenario (): Promise<Section> {
  let server: ServerHandle | undefined
  try {
    server = await spawnServer({})
    const started = performance.now()
    let failed = 0
    const samples: Sample[] = []
    const sample = async (after: number, settle?: number) =>
      samples.push({ after, settled: settle !== undefined, ...await server!.ask({ type: 'memory', settle }) })
    await sample(0)
    for (let from = 0; from < LOGINS; from += STEP) {
      failed += (await server.ask({ type: 'logins', from, count: STEP })).failed
      await sample(from + STEP)
      if (from + STEP >= LOGINS - STEP) await sample(from + STEP, SETTLE)
    }
    const seconds = (performance.now() - started) / 1000

    const at = (after: number, settled = false) => samples.find((s) => s.after === after && s.settled === settled)!
    const [boot, half, end, beforeEnd] = [at(0), at(LOGINS / 2), at(LOGINS), at(LOGINS - STEP)]
    const growth = (key: 'rss' | 'heapUsed', from: Sample, to: Sample) => to.usage[key] - from.usage[key]
    /** The last STEP logins grew `key` by at most LEVEL of what the process holds. */
    const verdict = (key: 'rss' | 'heapUsed', what: string, settled = false) => {
      const [from, to] = [at(LOGINS - STEP, settled), at(LOGINS, settled)]
      const met = growth(key, from, to) <= LEVEL * to.usage[key]
      return `${met ? '✅ met' : '❌ MISSED'}: ${what} levels off: the last ${thousands(STEP)} logins grew it by ` +
        `${mib(growth(key, from, to))} MiB (target ≤ ${LEVEL * 100}% of the ${mib(to.usage[key])} MiB it holds)`
    }
    return {
      title: '5. Memory',
      about: `One server process (in-process store, default limits: 100,000 sessions) logs in ${thousands(LOGINS)} distinct ` +
        'members through `app.wecom.login` (the login route\'s flow and session, without HTTP parsing), 64 at a time; ' +
        'WeCom is answered in-process (bench/wecom-stub.ts, given as `api.dispatcher`) so that the run takes seconds, ' +
        'not minutes. Memory is read once the process has been idle for half a second, after forced GCs (--expose-gc); ' +
        `after the last two steps also once it has been idle for ${SETTLE / 1000} s ("settled"), when V8's memory reducer has handed ` +
        `back what the burst left committed. Took ${fixed(seconds, 1)} s, ${failed} logins failed.`,
      head: ['after logins', 'RSS MiB', 'heap total MiB', 'heap used MiB', 'of which large objects MiB', 'external MiB'],
      rows: samples.map(({ after, settled, usage, largeObjects }) => [
        `${thousands(after)}${settled ? ', settled' : ''}`, mib(usage.rss), mib(usage.heapTotal), mib(usage.heapUsed), mib(largeObjects), mib(usage.external)
      ]),
      lines: [
        `first ${thousands(LOGINS / 2)} logins: RSS +${mib(growth('rss', boot, half))} MiB, heap used +${mib(growth('heapUsed', boot, half))} MiB`,
        `next ${thousands(LOGINS / 2)} logins: RSS +${mib(growth('rss', half, end))} MiB, heap used +${mib(growth('heapUsed', half, end))} MiB ` +
          `(${fixed(100 * growth('heapUsed', half, end) / growth('heapUsed', boot, half))}% of the first's), ` +
          `of which large objects +${mib(end.largeObjects - half.largeObjects)} MiB`,
        `heap used per session: ${fixed(growth('heapUsed', boot, half) / (LOGINS / 2))} bytes over the first ${thousands(LOGINS / 2)} logins ` +
          `(the store filling up to its default bound), ${fixed(growth('heapUsed', boot, end) / (LOGINS / 2))} bytes a kept session once it evicts ` +
          '(its Maps\' tables doubled to hold the deleted slots)',
        verdict('heapUsed', 'heap used (what the process keeps: sessions, session keys, indexes)'),
        verdict('rss', 'RSS, settled (what the process holds once V8 has handed back what the burst left committed)', true),
        `half a second after a burst, RSS read ${mib(beforeEnd.usage.rss)} MiB at ${thousands(LOGINS - STEP)} and ${mib(end.usage.rss)} MiB ` +
          `at ${thousands(LOGINS)} (heap total ${mib(beforeEnd.usage.heapTotal)} and ${mib(end.usage.heapTotal)}): pages V8 keeps committed ` +
          'while logins stream in and hands back once the process idles'
      ]
    }
  } finally {
    await server?.close()
  }
}
