import { execFileSync } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { createWecomSimulator, type SimulatedCorp, type WecomSimulator } from 'fastify-wecom-auth/testing'
import type { Redis } from 'ioredis'
import { CORP_A, LATENCY, memberId, PROVIDER_CORP, ROUNDS, simulatedCorps, SUITE, type BenchCorp } from '../fixtures.js'
import { loginCells, loginLoad, median, medianRatio, rounds, spawnServer, type LoginRun, type ServerHandle } from '../harness.js'
import { fixed, ms, target, times, type Section } from '../report.js'
import { startRedis } from './cluster.js'

const TITLE = '8. Provider: 10,000 authorized corps'
const CORPS = 10_000
const HALF = CORPS / 2
const PROCESSES = 4
/** Members of each generated corp: one per process. */
const MEMBERS = PROCESSES
/** create_auth pushes in flight at once. */
const INSTALLS_AT_ONCE = 64
/** Connections per process in the cold start: 128 logins in flight over the four. */
const COLD_CONNECTIONS = 32
const PUSHES = 1000
/** Ms between the suite_ticket pushes sent while the throughput runs go on. */
const PUSH_EVERY = 100
const CONNECTIONS = 64
const PER_CONNECTION = 10
const SPREAD = `suite, ${CORPS.toLocaleString('en')} corps`
const VARIANTS = [SPREAD, 'suite, one corp', 'own app, one corp'] as const
type Variant = typeof VARIANTS[number]
const KEY_PREFIX = 'wecom-auth:'
const thousands = (n: number) => n.toLocaleString('en')
const bytes = (n: number) => `${fixed(n)} B`
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0)

/** CORP_A (also the app's own corp, with its 1,000 members) and 9,999 more with a member per process. */
function providerCorps (): { installed: BenchCorp[], simulated: SimulatedCorp[] } {
  const more = Array.from({ length: CORPS - 1 }, (_, n) => ({
    corpId: `wwbenchcorp${String(n).padStart(7, '0')}`,
    secret: `bench-provider-corp-secret-${n}`,
    members: Array.from({ length: MEMBERS }, (_, i) => ({ userid: memberId(i), name: memberId(i), department: [1], position: 'engineer' }))
  }))
  return { installed: [CORP_A, ...more], simulated: [...simulatedCorps(), ...more] }
}

/** Runs `work` for every item, `concurrency` at a time. */
async function inParallel<T> (items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++])
  }))
}

const connect = (sim: WecomSimulator, server: ServerHandle) => sim.connectSuites(`${server.url}/wecom/suite/callback`)

/** Heap used and RSS of each process, after forced GCs. */
const memoryOf = (servers: readonly ServerHandle[]) => Promise.all(servers.map(async (server) => (await server.ask({ type: 'memory' })).usage))

/** RSS in MiB, median over processes. */
const rss = (readings: NodeJS.MemoryUsage[]) => fixed(median(readings.map((usage) => usage.rss)) / 2 ** 20)

/** The median over processes of what each one's heap used grew by from `before` to `after`, over `count`. */
function growth (before: NodeJS.MemoryUsage[], after: NodeJS.MemoryUsage[], count: number): number {
  return median(after.map((usage, i) => (usage.heapUsed - before[i].heapUsed) / count))
}

/**
 * The corps install the suite through the plugin's callback (create_auth, then the plugin's
 * get_permanent_code), in two halves, memory read after each: what an install costs is the second
 * half's growth, past what a process's first pushes cost once. Each half is spread
 * over `servers` in equal shares, INSTALLS_AT_ONCE pushes at a time. A push not acknowledged is
 * followed by a new install of the corp (the simulator cannot resend a create_auth: its AuthCode
 * is single-use), counted in `resent`.
 */
async function installAll (sim: WecomSimulator, servers: readonly ServerHandle[], corps: readonly BenchCorp[]) {
  const started = performance.now()
  let resent = 0
  const memory = [await memoryOf(servers)]
  for (const half of [corps.slice(0, HALF), corps.slice(HALF)]) {
    const share = Math.ceil(half.length / servers.length)
    for (const [index, server] of servers.entries()) {
      await connect(sim, server)
      await inParallel(half.slice(index * share, (index + 1) * share), INSTALLS_AT_ONCE, async ({ corpId }) => {
        for (let attempt = 1; (await sim.install(corpId))?.status !== 200; attempt++) {
          if (attempt === 3) throw new Error(`the install of ${corpId} was not acknowledged three times`)
          resent++
        }
      })
    }
    memory.push(await memoryOf(servers))
  }
  return { seconds: (performance.now() - started) / 1000, resent, heap: growth(memory[1], memory[2], HALF), memory }
}

/** What an install costs a process that keeps the installs itself: one server on the in-process store. */
async function inProcessInstalls (sim: WecomSimulator, corps: readonly BenchCorp[]) {
  const server = await spawnServer({ simUrl: sim.url, provider: true })
  try {
    await connect(sim, server)
    await sim.pushSuiteTicket(SUITE.suiteId)
    return await installAll(sim, [server], corps)
  } finally {
    await server.close()
  }
}

interface RedisFigures {
  usedMemory: number
  /**
   * Keys and their bytes (MEMORY USAGE, sampled) per family: what follows the prefix up to the
   * first ':', the suite's own token apart from the corps'.
   */
  families: Map<string, { keys: number, bytes: number }>
}

/** SCAN of every key, grouped by family; MEMORY USAGE of up to 100 keys a family, scaled to its count. */
async function redisFigures (client: Redis): Promise<RedisFigures> {
  const keysOf = new Map<string, string[]>()
  for await (const batch of client.scanStream({ count: 1000 }) as AsyncIterable<string[]>) {
    for (const key of batch) {
      const family = key.endsWith(':suite_access_token') ? 'suite-token' : key.slice(KEY_PREFIX.length).split(':')[0]
      const keys = keysOf.get(family)
      if (keys === undefined) keysOf.set(family, [key])
      else keys.push(key)
    }
  }
  const families = new Map<string, { keys: number, bytes: number }>()
  for (const [family, keys] of keysOf) {
    const sample = keys.slice(0, 100)
    const sizes = await Promise.all(sample.map((key) => client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') as Promise<number | null>))
    families.set(family, { keys: keys.length, bytes: sum(sizes.map((size) => size ?? 0)) * keys.length / sample.length })
  }
  const usedMemory = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1])
  return { usedMemory, families }
}

const family = (figures: RedisFigures, name: string) => figures.families.get(name) ?? { keys: 0, bytes: 0 }
const allKeys = (figures: RedisFigures) => sum([...figures.families.values()].map(({ keys }) => keys))

/**
 * Counts service/get_corp_token calls per corp as they reach the simulator, which runs in this
 * process: the corp is named in the body, which the simulator's request log does not keep.
 */
function countCorpTokens () {
  const counts = new Map<string, number>()
  const onRequest = (message: unknown) => {
    const request = (message as { request: IncomingMessage }).request
    if (request.url?.startsWith('/cgi-bin/service/get_corp_token?') !== true) return
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const corpId = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { auth_corpid?: unknown }).auth_corpid)
      counts.set(corpId, (counts.get(corpId) ?? 0) + 1)
    })
  }
  subscribe('http.server.request.start', onRequest)
  return { counts, stop: () => unsubscribe('http.server.request.start', onRequest) }
}

const suiteLogin = (sim: WecomSimulator, corpId: string, userid: string) => ({ code: sim.issueCode(corpId, userid), suiteId: SUITE.suiteId })

/**
 * Cold start: no corp token anywhere. Corp c is logged in on processes c mod 4 and c + 1 mod 4,
 * each process taking its corps in the same order, so that a corp's two first logins arrive on two
 * processes at about the same time. service/get_corp_token is counted per corp.
 */
async function coldStart (sim: WecomSimulator, workers: readonly ServerHandle[], corps: readonly BenchCorp[]) {
  const before = { suite: sim.calls['service/get_suite_token'], corp: sim.calls['service/get_corp_token'] }
  const counter = countCorpTokens()
  let runs: LoginRun[]
  try {
    runs = await Promise.all(workers.map((worker, p) => {
      const mine = corps.filter((_, c) => c % PROCESSES === p || (c + 1) % PROCESSES === p)
      return loginLoad(sim, {
        urls: [worker.url], path: '/wecom/login', connections: COLD_CONNECTIONS, count: mine.length, body: (i) => suiteLogin(sim, mine[i].corpId, memberId(p))
      })
    }))
  } finally {
    counter.stop()
  }
  return {
    ok: sum(runs.map((r) => r.ok)),
    failed: sum(runs.map((r) => r.failed)),
    seconds: Math.max(...runs.map((r) => r.seconds)),
    counts: counter.counts,
    corpTokenCalls: sim.calls['service/get_corp_token'] - before.corp,
    suiteTokenCalls: sim.calls['service/get_suite_token'] - before.suite,
    memory: await memoryOf(workers)
  }
}

/** Corps whose tokens a process takes first, before its memory is read: what its first ones cost once. */
const FIRST_TOKENS = 100

/**
 * What a corp's cached token costs a process: a fifth process joins after the cold start and takes
 * every corp's token (`app.wecom.accessToken`, from Redis: no WeCom call), memory read before and
 * after all but the first FIRST_TOKENS. The same cache entry a login makes, without the login's own
 * allocations around it, which make the heap's readings move by more than 2,500 corps' tokens do.
 */
async function tokenCache (sim: WecomSimulator, redis: string, corps: readonly BenchCorp[]) {
  const server = await spawnServer({ simUrl: sim.url, redis, provider: true })
  try {
    const calls = sim.calls['service/get_corp_token']
    const ids = corps.map(({ corpId }) => corpId)
    let { failed } = await server.ask({ type: 'tokens', corpIds: ids.slice(0, FIRST_TOKENS) })
    const before = await server.ask({ type: 'memory' })
    failed += (await server.ask({ type: 'tokens', corpIds: ids.slice(FIRST_TOKENS) })).failed
    const after = await server.ask({ type: 'memory' })
    return { heap: (after.usage.heapUsed - before.usage.heapUsed) / (ids.length - FIRST_TOKENS), calls: sim.calls['service/get_corp_token'] - calls, failed }
  } finally {
    await server.close()
  }
}

/**
 * Each process takes the tokens of the corps it did not log in (from Redis, no WeCom call), as a
 * long-running process has every active corp's: the throughput runs then measure that steady state,
 * not a first login's read of Redis.
 */
async function fillCaches (sim: WecomSimulator, workers: readonly ServerHandle[], corps: readonly BenchCorp[]) {
  const calls = sim.calls['service/get_corp_token']
  const corpIds = corps.map(({ corpId }) => corpId)
  const failed = sum((await Promise.all(workers.map((worker) => worker.ask({ type: 'tokens', corpIds })))).map((answer) => answer.failed))
  return { calls: sim.calls['service/get_corp_token'] - calls, failed }
}

/** A suite_ticket push's time from the simulator's send (its encryption included) to the answer read; `failed`: not answered 200. */
async function timedPush (sim: WecomSimulator, into: { latencies: number[], failed: number }): Promise<void> {
  const started = performance.now()
  const { answer } = await sim.pushSuiteTicket(SUITE.suiteId)
  into.latencies.push(performance.now() - started)
  if (answer?.status !== 200) into.failed++
}

function percentiles ({ latencies }: { latencies: number[] }): { p50: number, p99: number, max: number } {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] }
}

/** PUSHES suite_ticket pushes one after the other, a quarter to each process. */
async function idlePushes (sim: WecomSimulator, workers: readonly ServerHandle[]) {
  const pushes = { latencies: [] as number[], failed: 0 }
  for (const worker of workers) {
    await connect(sim, worker)
    for (let n = 0; n < PUSHES / workers.length; n++) await timedPush(sim, pushes)
  }
  return pushes
}

/**
 * Warm login throughput, the variants side by side over the four processes, while a suite_ticket
 * push goes to the last process every PUSH_EVERY ms. The spread variant walks the corps in turn,
 * each login another corp.
 */
async function throughput (sim: WecomSimulator, workers: readonly ServerHandle[], corps: readonly BenchCorp[]) {
  const urls = workers.map((worker) => worker.url)
  let cursor = 0
  const run = (variant: Variant, count: number) => {
    const first = cursor
    if (variant === SPREAD) cursor += count
    const body = variant === SPREAD
      ? (i: number) => suiteLogin(sim, corps[(first + i) % CORPS].corpId, memberId(i % MEMBERS))
      : variant === 'suite, one corp' ? (i: number) => suiteLogin(sim, CORP_A.corpId, memberId(i)) : undefined
    return loginLoad(sim, { urls, path: '/wecom/login', connections: CONNECTIONS, count, ...(body === undefined ? {} : { body }) })
  }
  for (const variant of VARIANTS) await run(variant, CONNECTIONS * 5)
  const pushes = { latencies: [] as number[], failed: 0 }
  const pushing = { on: true }
  const pusher = (async () => {
    while (pushing.on) {
      await timedPush(sim, pushes)
      await sleep(PUSH_EVERY)
    }
  })()
  try {
    return { runs: await rounds(VARIANTS, ROUNDS, (variant) => run(variant, CONNECTIONS * PER_CONNECTION)), pushes }
  } finally {
    pushing.on = false
    await pusher
  }
}

/** Scenario 8: a provider's 10,000 installed corps on 4 processes sharing Redis. */
export async function providerScenario (): Promise<Section> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    return { title: TITLE, about: 'Skipped.', lines: ['⏭ skipped: redis-server is not installed (looked for it on PATH)'] }
  }
  const { installed, simulated } = providerCorps()
  const redis = await startRedis()
  const sim = await createWecomSimulator({ corps: simulated, latency: LATENCY, provider: { corpId: PROVIDER_CORP }, suites: [SUITE] })
  const workers: ServerHandle[] = []
  try {
    const inProcess = await inProcessInstalls(sim, installed)

    workers.push(...await Promise.all(Array.from({ length: PROCESSES }, () => spawnServer({ simUrl: sim.url, redis: redis.url, provider: true }))))
    await connect(sim, workers[0])
    if ((await sim.pushSuiteTicket(SUITE.suiteId)).answer?.status !== 200) throw new Error('the first suite_ticket push was not acknowledged')
    const redisBefore = await redisFigures(redis.client)
    const installs = await installAll(sim, workers, installed)
    const redisInstalled = await redisFigures(redis.client)
    const cold = await coldStart(sim, workers, installed)
    const redisCold = await redisFigures(redis.client)
    const joiner = await tokenCache(sim, redis.url, installed)
    const filled = await fillCaches(sim, workers, installed)
    const idle = await idlePushes(sim, workers)
    const warm = await throughput(sim, workers, installed)
    const memoryWarm = await memoryOf(workers)

    const { runs } = warm
    const ratio = medianRatio(runs[SPREAD], runs['own app, one corp'], (r) => r.rate)
    const [quiet, loaded] = [percentiles(idle), percentiles(warm.pushes)]
    const maxTokens = Math.max(0, ...cold.counts.values())
    const tokens = family(redisCold, 'token')
    const sessions = ['session', 'member', 'session-key'].map((name) => family(redisCold, name))
    return {
      title: TITLE,
      about: `A service provider's third-party suite installed by ${thousands(CORPS)} corps, on ${PROCESSES} server processes sharing ` +
        'one redis-server of our own (loopback, no persistence). Every install goes through the plugin\'s suite callback: the simulator ' +
        `pushes create_auth, the plugin calls get_permanent_code, seals and keeps the code (${INSTALLS_AT_ONCE} pushes at a time, an equal share ` +
        'to each process). Cold start: no corp token anywhere; each corp is logged in on two processes whose logins reach it at about the ' +
        `same time (${COLD_CONNECTIONS} connections a process, corps in the same order), and the simulator counts service/get_corp_token per corp. ` +
        `Then ${thousands(PUSHES)} suite_ticket pushes one after the other, a quarter to each process; then, every process holding every corp's token, warm login throughput: ` +
        `${CONNECTIONS} connections over the ${PROCESSES} processes, ${CONNECTIONS * PER_CONNECTION} logins a run: the suite's logins spread over ` +
        `the ${thousands(CORPS)} corps (each login another corp), the suite's logins of one corp, and that same corp's own app's logins ` +
        `(scenario 2's login), median of ${ROUNDS} rounds, a suite_ticket push every ${PUSH_EVERY} ms meanwhile. A corp installed costs a ` +
        'process what its heap used grew by over the second half of the installs (median over processes), a corp\'s cached token what a ' +
        'fifth process\'s grew by as it took every corp\'s token from Redis, both read after forced GCs; Redis\'s by SCAN and MEMORY USAGE. ' +
        `Before all that, the same ${thousands(CORPS)} installs on one process with the in-process store. ` +
        `${LATENCY} ms per WeCom call.`,
      head: ['variant', 'logins/s', 'p50', 'p99', 'WeCom calls / login', 'failed'],
      rows: VARIANTS.map((variant) => [variant, ...loginCells(runs[variant])]),
      lines: [
        `installs: ${thousands(CORPS)} create_auth pushes acknowledged in ${fixed(installs.seconds, 1)} s (${fixed(CORPS / installs.seconds)} a second), ` +
          `${installs.resent} corps installed again after a push not acknowledged; on the in-process store ${fixed(inProcess.seconds, 1)} s, ` +
          `${inProcess.resent} again`,
        `cold start: ${thousands(cold.ok)} logins succeeded, ${cold.failed} failed, in ${fixed(cold.seconds, 1)} s; ` +
          `service/get_corp_token: ${thousands(cold.corpTokenCalls)} calls, for ${thousands(cold.counts.size)} corps; service/get_suite_token: ${cold.suiteTokenCalls}; ` +
          `then each process took the other corps' tokens from Redis: ${filled.calls} get_corp_token calls, ${filled.failed} failed`,
        target(`service/get_corp_token calls per corp from a cold start, ${PROCESSES} processes (worst corp)`, String(maxTokens), '≤ 1',
          maxTokens <= 1 && cold.counts.size === CORPS),
        target(`suite_ticket push handled, p99 of ${thousands(idle.latencies.length)} one at a time`, ms(quiet.p99), '< 50 ms', quiet.p99 < 50),
        `suite_ticket pushes one at a time: p50 ${ms(quiet.p50)}, worst ${ms(quiet.max)}, ${idle.failed} not answered 200; ` +
          `during the throughput runs (${warm.pushes.latencies.length} pushes): p50 ${ms(loaded.p50)}, p99 ${ms(loaded.p99)}, ` +
          `worst ${ms(loaded.max)}, ${warm.pushes.failed} not answered 200`,
        target(`${SPREAD} / own app, one corp (logins/s)`, times(ratio), '≥ 0.90×', ratio >= 0.9),
        `${SPREAD} / suite, one corp (logins/s): ${times(medianRatio(runs[SPREAD], runs['suite, one corp'], (r) => r.rate))}; ` +
          `suite, one corp / own app, one corp: ${times(medianRatio(runs['suite, one corp'], runs['own app, one corp'], (r) => r.rate))}`,
        `process memory per authorized corp, Redis store: heap used +${bytes(installs.heap)} a corp installed (the installs are kept in ` +
          `Redis: within the readings' noise), +${bytes(joiner.heap)} a corp whose token the process caches (a fifth process taking the ${thousands(CORPS)} ` +
          `corps' tokens from Redis: ${joiner.calls} get_corp_token calls, ${joiner.failed} failed). RSS ${rss(installs.memory[0])} MiB at boot, ${rss(installs.memory[2])} after the installs, ` +
          `${rss(cold.memory)} after the cold start, ${rss(memoryWarm)} after the throughput runs`,
        'process memory per authorized corp, in-process store (the install kept in the process, its code sealed): heap used ' +
          `+${bytes(inProcess.heap)} a corp installed; RSS ${rss(inProcess.memory[0])} MiB at boot, ${rss(inProcess.memory[2])} after the installs`,
        `Redis per authorized corp: the install, a field of the suite's hash (${bytes(family(redisInstalled, 'suite-corps').bytes / CORPS)}), ` +
          `and its create_auth push's done record, kept 24 h (${thousands(family(redisInstalled, 'delivery').keys)} delivery keys, ` +
          `${bytes(family(redisInstalled, 'delivery').bytes / CORPS)} each); used_memory +${bytes((redisInstalled.usedMemory - redisBefore.usedMemory) / CORPS)} ` +
          `a corp over the installs; keys ${thousands(allKeys(redisBefore))} → ${thousands(allKeys(redisInstalled))}`,
        `Redis per corp in use: its token, ${thousands(tokens.keys)} token keys for ${thousands(CORPS)} corps ` +
          `(${bytes(tokens.bytes / Math.max(1, tokens.keys))} each, until the token's last tenth); per login, not per corp: ` +
          `${fixed(sum(sessions.map((f) => f.keys)) / cold.ok, 2)} session keys (${bytes(sum(sessions.map((f) => f.bytes)) / cold.ok)}), ` +
          'kept for the session\'s life'
      ]
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.close()))
    await sim.close()
    redis.client.disconnect()
    redis.process.kill()
  }
}
