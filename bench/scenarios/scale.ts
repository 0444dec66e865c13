import { generateKeyPairSync, randomUUID } from 'node:crypto'
// The plugin's own signer, as a login runs it: the tokens are exactly those the plugin issues.
import Fastify from 'fastify'
import { createAccessTokens, registerJwtEngine } from '../../src/jwt.js'
import { resolveOptions } from '../../src/options.js'
import { CORP_A, CORPS, pluginJwt, ROUNDS, type BenchKeyPair } from '../fixtures.js'
import { cpuRate, load, loadServed, median, medianRatio, rounds, spawnServer, type LoadResult, type ServedRun } from '../harness.js'
import { fixed, target, times, type Section } from '../report.js'

const ALGORITHMS = ['HS256', 'ES256'] as const
/** Distinct tokens in use: the first N of one list, so that a larger count holds the smaller ones. */
const COUNTS = [1, 10_000, 50_000, 100_000] as const
/**
 * The no-op onRequest hook and plain @fastify/jwt do the same work whichever token a request
 * carries (the first ignores it, the second verifies every one): one run of each per round is the
 * reference for all four counts, which leaves time for twice scenario 1's rounds, and steadier
 * medians.
 */
const VARIANTS = ['hook', 'plain', ...COUNTS.map((count) => `plugin ${count}` as const)]
type Variant = typeof VARIANTS[number]
/** The number of tokens a plugin variant takes; undefined for the hook and plain. */
const countOf = (variant: Variant) => variant.startsWith('plugin') ? Number(variant.split(' ')[1]) : undefined
const SCALE_ROUNDS = 2 * ROUNDS
const CONNECTIONS = 32
const SECONDS = 1
const thousands = (n: number) => n.toLocaleString('en')

/** The same list in an order of its own, the same on every run of the bench (a fixed-seed LCG). */
export function shuffled<T> (list: readonly T[]): T[] {
  const copy = [...list]
  let seed = 0x2545f491
  for (let i = copy.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    const j = seed % (i + 1)
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}

export function es256 (): BenchKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { format: 'pem', type: 'pkcs8' },
    publicKeyEncoding: { format: 'pem', type: 'spki' }
  })
  return { privateKey, publicKey }
}

/** `count` Authorization headers, each with the access token of another member and session. */
export async function bearers (count: number, keyPair?: BenchKeyPair): Promise<string[]> {
  const config = resolveOptions({ corps: CORPS.map(({ corpId, secret }) => ({ corpId, secret })), jwt: pluginJwt(keyPair) })
  const engine = Fastify({ logger: false })
  const tokens = createAccessTokens(config.jwt, { corpIds: new Set([CORP_A.corpId]), suiteIds: new Set() }, await registerJwtEngine(engine, config.jwt))
  await engine.close()
  return Array.from({ length: count }, (_, i) => `Bearer ${tokens.sign({ userid: `m${i}`, corpid: CORP_A.corpId, sid: randomUUID() })}`)
}

/**
 * Scenario 7: scenario 1 at company scale. Many members' tokens in use at once, each already seen
 * once (as a member's token is after its first request), for HS256 and ES256.
 */
export async function scaleScenario (): Promise<Section> {
  const rows: Array<Array<string | number>> = []
  const lines: string[] = []
  const notes: string[] = []
  const largest = Math.max(...COUNTS)
  for (const algorithm of ALGORITHMS) {
    const keyPair = algorithm === 'ES256' ? es256() : undefined
    let started = performance.now()
    const all = await bearers(largest, keyPair)
    const signing = (performance.now() - started) / 1000
    const server = await spawnServer({ keyPair })
    try {
      // The tokens in use, in an order of their own, and where the last run stopped: a run of a
      // second sends about a third of 100,000, so that each run begins where the last ended, and
      // each takes them all over, not only the ones it was first given.
      const inUse = Object.fromEntries(VARIANTS.map((variant) => [variant, shuffled(
        all.slice(0, countOf(variant))
      )])) as Record<Variant, string[]>
      const cursor = Object.fromEntries(VARIANTS.map((variant) => [variant, 0])) as Record<Variant, number>
      const run = async (variant: Variant, duration: number): Promise<ServedRun> => {
        const path = countOf(variant) === undefined ? `/${variant}` : '/plugin'
        const result = await loadServed(server, { urls: [server.url], path, connections: CONNECTIONS, duration, authorizations: inUse[variant], offset: cursor[variant] })
        cursor[variant] += result.requests
        return result
      }
      for (const variant of ['hook', 'plain'] as const) await run(variant, 0.5)

      // Every token seen once: what the cache then holds is what it costs.
      const before = await server.ask({ type: 'memory' })
      started = performance.now()
      const warm = await load({ urls: [server.url], path: '/plugin', connections: CONNECTIONS, amount: largest, authorizations: all })
      const warming = (performance.now() - started) / 1000
      const after = await server.ask({ type: 'memory' })
      if (warm.ok !== largest) throw new Error(`${algorithm}: ${warm.failed} of ${largest} tokens refused while warming up`)
      const perToken = (after.usage.heapUsed - before.usage.heapUsed) / largest

      const runs = await rounds(VARIANTS, SCALE_ROUNDS, (variant) => run(variant, SECONDS))
      const rate = (r: LoadResult) => r.rate
      const failed = VARIANTS.reduce((sum, variant) => sum + runs[variant].reduce((n, r) => n + r.failed, 0), 0)
      const cpu: string[] = []
      for (const variant of VARIANTS) {
        const count = countOf(variant)
        const vsHook = medianRatio(runs[variant], runs.hook, rate)
        const cpuVsHook = medianRatio(runs[variant], runs.hook, cpuRate)
        rows.push([
          algorithm, count === undefined ? variant : `plugin, ${thousands(count)} tokens`, fixed(median(runs[variant].map(rate))),
          times(vsHook), times(medianRatio(runs[variant], runs.plain, rate)),
          fixed(median(runs[variant].map((r) => r.serverMicros)), 1), times(cpuVsHook)
        ])
        if (count !== undefined) {
          lines.push(target(`${algorithm}, ${thousands(count)} tokens: plugin / no-op onRequest hook (req/s)`, times(vsHook), '≥ 0.90×', vsHook >= 0.9))
          const added = median(runs[variant].map((r, i) => r.serverMicros - runs.hook[i].serverMicros))
          cpu.push(`${algorithm}, ${thousands(count)} tokens: ${times(cpuVsHook)} (${added >= 0 ? '+' : ''}${fixed(added, 1)} µs)`)
        }
      }
      notes.push(
        'server CPU per request, plugin / no-op hook as requests per server CPU-second (and the plugin\'s µs over the hook\'s, ' +
          `median of per-round differences): ${cpu.join('; ')}`,
        `${algorithm}: ${fixed(perToken)} bytes of heap per cached token (heap used after every token was seen once, ` +
          `less before, over ${thousands(largest)}); signing the tokens took ${fixed(signing, 1)} s, ` +
          `seeing each once ${fixed(warming, 1)} s; non-2xx or errors over all runs: ${failed}`
      )
    } finally {
      await server.close()
    }
  }
  return {
    title: '7. Authenticated route at company scale',
    about: 'Scenario 1 with many members at once: GET of the same trivial route with a no-op onRequest hook (/hook), @fastify/jwt ' +
      '`request.jwtVerify()` (/plain) and `app.wecom.authenticate` (/plugin, default options), the requests taking in turn ' +
      `the Bearer tokens of 1 to ${thousands(largest)} distinct members, signed for this run by the plugin's own signer ` +
      '(src/jwt.ts) with a fresh session id each. One server process per algorithm (HS256 with the shared secret; ES256 ' +
      'with a P-256 pair made for the run), in which every token was sent once to /plugin before any run. /hook and ' +
      `/plain take all ${thousands(largest)} in turn: their work does not depend on which token comes. ${CONNECTIONS} ` +
      `connections, ${SECONDS} s per run, median of ${SCALE_ROUNDS} rounds; ratios are medians of per-round ratios. ` +
      'Each list of tokens is taken in a shuffled order, each run going on where the last one stopped. The server\'s CPU time ' +
      'per answered request is read from the server process around each run: building a request per token costs the load ' +
      'generator, on the same two cores, about as much as the answer costs the server, so req/s can be its limit; requests ' +
      'per server CPU-second are what the guard costs the server whatever the limit is.',
    head: ['algorithm', 'variant', 'req/s', '/ hook', '/ plain', 'server CPU µs / req', 'req per CPU-s / hook'],
    rows,
    lines: [...lines, ...notes]
  }
}
