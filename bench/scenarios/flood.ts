import { ROUNDS } from '../fixtures.js'
import { cpuRate, load, loadServed, median, medianRatio, rounds, spawnServer, type ServedRun } from '../harness.js'
import { fixed, target, times, type Section } from '../report.js'
import { bearers, es256, shuffled } from './scale.js'

const ALGORITHMS = ['HS256', 'ES256'] as const
/** The guard's cache capacity for this scenario: small enough to fill in seconds, so that its miss path runs full. */
const CAPACITY = 10_000
/** Members whose tokens the valid traffic carries: all cached after the warm-up. */
const MEMBERS = 1_000
/** Distinct forged tokens, and distinct fresh valid ones: more than the cache holds, so none comes back cached. */
const DISTINCT = 3 * CAPACITY
const VARIANTS = ['hook', 'members', 'flood', 'misses'] as const
type Variant = typeof VARIANTS[number]
const CONNECTIONS = 32
const SECONDS = 1

/** A valid token with one character of its signature changed (another character of the same spelling): a forgery, verified in full and refused. */
function forged (bearer: string): string {
  const at = bearer.length - 20
  return `${bearer.slice(0, at)}${bearer[at] === 'A' ? 'B' : 'A'}${bearer.slice(at + 1)}`
}

/** Interleaves two lists, one of each in turn: half the requests carry the first's, half the second's. */
function halfAndHalf (first: readonly string[], second: readonly string[]): string[] {
  return Array.from({ length: 2 * Math.max(first.length, second.length) }, (_, i) => (i % 2 === 0 ? first : second)[Math.floor(i / 2) % (i % 2 === 0 ? first : second).length]!)
}

/**
 * Scenario 9: floods of forged tokens. The guard's cache takes only tokens that passed a full
 * verification, so a forged token costs one signature check and pushes no member's token out.
 * Measured for HS256 and ES256: members' requests alone, members' requests with as many distinct
 * forged ones, and distinct valid tokens never seen (each a miss of a full cache: a verification,
 * an entry in, the oldest out).
 */
export async function floodScenario (): Promise<Section> {
  const rows: Array<Array<string | number>> = []
  const lines: string[] = []
  for (const algorithm of ALGORITHMS) {
    const keyPair = algorithm === 'ES256' ? es256() : undefined
    const [members, fresh, others] = [await bearers(MEMBERS, keyPair), await bearers(DISTINCT, keyPair), await bearers(DISTINCT, keyPair)]
    const lists: Record<Variant, string[]> = {
      hook: members,
      members,
      flood: halfAndHalf(members, shuffled(others.map(forged))),
      misses: fresh
    }
    const server = await spawnServer({ keyPair, cacheSize: CAPACITY })
    try {
      // The cache filled to capacity, the members' tokens last in, as a busy hour leaves it.
      const filler = await bearers(CAPACITY - MEMBERS, keyPair)
      for (const warm of [filler, members]) {
        const answered = await load({ urls: [server.url], path: '/plugin', connections: CONNECTIONS, amount: warm.length, authorizations: warm })
        if (answered.ok !== warm.length) throw new Error(`${algorithm}: ${answered.failed} tokens refused while warming up`)
      }
      const cursor: Record<Variant, number> = { hook: 0, members: 0, flood: 0, misses: 0 }
      const run = async (variant: Variant): Promise<ServedRun> => {
        const result = await loadServed(server, { urls: [server.url], path: variant === 'hook' ? '/hook' : '/plugin', connections: CONNECTIONS, duration: SECONDS, authorizations: lists[variant], offset: cursor[variant] })
        cursor[variant] += result.requests
        return result
      }
      const runs = await rounds(VARIANTS, ROUNDS, run)
      for (const variant of VARIANTS) {
        rows.push([
          algorithm, variant, fixed(median(runs[variant].map((r) => (r.ok + r.failed) / r.seconds))),
          fixed(median(runs[variant].map((r) => r.rate))),
          runs[variant].reduce((n, r) => n + r.failed, 0),
          fixed(median(runs[variant].map((r) => r.serverMicros * r.ok / (r.ok + r.failed))), 1)
        ])
      }
      const forgedRefused = runs.flood.every((r) => r.failed > 0) && runs.members.every((r) => r.failed === 0)
      const miss = median(runs.misses.map((r) => r.serverMicros))
      const hit = median(runs.members.map((r) => r.serverMicros))
      lines.push(
        target(`${algorithm}: every forged token refused, every member's answered`, forgedRefused ? 'yes' : 'no', 'yes', forgedRefused),
        `${algorithm}: members' requests answered per second during the flood / without it: ${times(medianRatio(runs.flood, runs.members, (r) => r.rate))}; ` +
          `members alone / no-op hook (req per server CPU-s): ${times(medianRatio(runs.members, runs.hook, cpuRate))}`,
        `${algorithm}: a miss of the full cache (a valid token never seen: verified, put in, the oldest out) costs ${fixed(miss, 1)} µs of server CPU, ` +
          `a hit ${fixed(hit, 1)} µs: the signature check is ${fixed(miss - hit, 1)} µs`
      )
    } finally {
      await server.close()
    }
  }
  return {
    title: '9. Floods of forged tokens',
    about: `One server process per algorithm (HS256; ES256 with a P-256 pair made for the run), its guard's cache set to ${CAPACITY.toLocaleString('en')} ` +
      `tokens and filled, ${MEMBERS.toLocaleString('en')} members' tokens the last in. /hook: the no-op onRequest hook with the members' tokens; ` +
      `members: GET /plugin with the members' tokens; flood: the members' tokens and ${DISTINCT.toLocaleString('en')} distinct forged ones ` +
      '(a valid token of another session, one character of its signature changed), one of each in turn; misses: ' +
      `${DISTINCT.toLocaleString('en')} distinct valid tokens never seen, more than the cache holds, so each is a miss of a full cache. ` +
      `${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} rounds. "members/s" counts the 200s only; the ` +
      'server CPU column is per answered request of either kind (the flood\'s forged ones included).',
    head: ['algorithm', 'traffic', 'req/s', 'members/s', 'refused', 'server CPU µs / req'],
    rows,
    lines
  }
}
