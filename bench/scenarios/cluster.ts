import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { createWecomSimulator, type WecomSimulator } from 'fastify-wecom-auth/testing'
import { Redis } from 'ioredis'
import { buildApp } from '../app.js'
import { startCluster } from '../../test/helpers/redis-topologies.js'
import { CORP_A, CORPS, LATENCY, memberId, ROUNDS, simulatedCorps } from '../fixtures.js'
import { loginCells, loginLoad, medianRatio, rounds, spawnServer, totalCalls, type ServerHandle } from '../harness.js'
import { target, times, type Section } from '../report.js'

const TITLE = '4. Cluster: 4 processes sharing Redis'
const PROCESSES = 4
/** 8 per process, corps in turn: at most 3 calls each, so the simulator's 100-entry log holds every call. */
const COLD_LOGINS = 32
const CONNECTIONS = 64
const PER_CONNECTION = 8

const skipped = (reason: string): Section => ({
  title: TITLE,
  about: 'Skipped.',
  lines: [`⏭ skipped: ${reason}`]
})

async function freePort (): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  probe.close()
  return port
}

/** A redis-server of our own on a free port (no persistence), and a client of it; scenario 8 starts one too. */
export async function startRedis (): Promise<{ process: ChildProcess, url: string, client: Redis }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  for (let attempt = 0; ; attempt++) {
    // No reconnecting of its own: until redis-server listens, each attempt must fail fast.
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    // Refusals before redis-server listens are expected: connect() rejects with them.
    client.on('error', () => {})
    try {
      await client.connect()
      return { process: child, url, client }
    } catch (error) {
      client.disconnect()
      if (attempt === 50) {
        child.kill()
        throw error
      }
      await sleep(100)
    }
  }
}

/**
 * The Redis store may not exist yet: registering with `store.redis` must succeed, and a login
 * must leave keys in Redis (an option accepted but ignored would otherwise pass for a cluster).
 */
async function redisStoreMissing (sim: WecomSimulator, url: string, client: Redis): Promise<string | undefined> {
  let app: Awaited<ReturnType<typeof buildApp>> | undefined
  try {
    app = await buildApp({ simUrl: sim.url, redis: url })
    const response = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A.corpId, memberId(0)) } })
    if (response.statusCode !== 200) return `a login with store.redis answered ${response.statusCode}: ${response.body}`
    if (await client.dbsize() === 0) return 'the plugin accepts store.redis but wrote nothing to Redis: the Redis store is not available yet'
    return undefined
  } catch (error) {
    return `registering with store.redis failed: ${error instanceof Error ? error.message : String(error)}`
  } finally {
    await app?.close()
    await client.flushall()
  }
}

/** Scenario 4: one-token-per-corp across processes, and what 4 processes give over 1. */
export async function clusterScenario (): Promise<Section> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    return skipped('redis-server is not installed (looked for it on PATH)')
  }
  const redis = await startRedis()
  const sim = await createWecomSimulator({ corps: simulatedCorps(), latency: LATENCY })
  // The test suite's Cluster of three primaries, torn down by this scenario instead of a test.
  const cleanups: Array<() => unknown> = []
  try {
    const missing = await redisStoreMissing(sim, redis.url, redis.client)
    if (missing !== undefined) return skipped(missing)
    const single = await measure(sim, redis.url)
    const cluster = await startCluster({ teardown: (fn) => cleanups.push(fn), test: () => {} })
    if (cluster === undefined) throw new Error('the Redis Cluster did not start')
    const onCluster = await measure(sim, cluster.urls)
    return {
      title: TITLE,
      about: `${PROCESSES} server processes sharing Redis, started cold: on one redis-server of our own, then on a Redis Cluster ` +
        `of three primaries (loopback, no persistence, given as node URLs). Each time, first ${COLD_LOGINS} concurrent logins spread ` +
        `over the processes and ${CORPS.length} corps; then warm login throughput with ${CONNECTIONS} connections ` +
        `(${PER_CONNECTION} logins each per run, corps in turn) against all ${PROCESSES} processes or just one, median of ${ROUNDS} rounds. ` +
        `This machine has ${availableParallelism()} cores, shared by the processes, the Redis servers, the simulator and autocannon.`,
      head: ['Redis', 'variant', 'logins/s', 'p50', 'p99', 'WeCom calls / login', 'failed'],
      rows: [...single.rows.map((row) => ['one server', ...row]), ...onCluster.rows.map((row) => ['Cluster', ...row])],
      lines: [...single.lines.map((line) => `one server: ${line}`), ...onCluster.lines.map((line) => `Cluster: ${line}`)]
    }
  } finally {
    await sim.close()
    redis.client.disconnect()
    redis.process.kill()
    for (const cleanup of cleanups.reverse()) await cleanup()
  }
}

/** Cold gettoken calls per corp and warm throughput of PROCESSES processes against one, on `redis`. */
async function measure (sim: WecomSimulator, redis: string | string[]): Promise<Required<Pick<Section, 'rows' | 'lines'>>> {
  const workers: ServerHandle[] = []
  try {
    // Counted from before the processes start, in case a future version fetches tokens at boot.
    const before = totalCalls(sim)
    workers.push(...await Promise.all(Array.from({ length: PROCESSES }, () => spawnServer({ simUrl: sim.url, redis }))))
    const urls = workers.map((worker) => worker.url)
    const cold = await loginLoad(sim, { urls, path: '/wecom/login', connections: COLD_LOGINS, count: COLD_LOGINS, corps: CORPS })
    const coldCalls = totalCalls(sim) - before
    const logComplete = coldCalls <= 100
    const coldLog = sim.requests.slice(-coldCalls)
    const gettokenOf = (corpId: string) => coldLog.filter((call) => call.endpoint === 'gettoken' && call.query.corpid === corpId).length

    const variants = [`${PROCESSES} processes`, '1 process'] as const
    const run = (variant: typeof variants[number], count: number) => loginLoad(sim, {
      urls: variant === '1 process' ? urls.slice(0, 1) : urls, path: '/wecom/login', connections: CONNECTIONS, count, corps: CORPS
    })
    for (const variant of variants) await run(variant, CONNECTIONS * 5)
    const runs = await rounds(variants, ROUNDS, (variant) => run(variant, CONNECTIONS * PER_CONNECTION))
    const scale = medianRatio(runs[variants[0]], runs[variants[1]], (r) => r.rate)

    const coldLines = logComplete
      ? CORPS.map(({ corpId }) => {
        const count = gettokenOf(corpId)
        return target(`cold gettoken calls for corp ${corpId} across ${PROCESSES} processes`, String(count), '1', count === 1)
      })
      : [target('cold gettoken calls, all corps (over 100 calls: the simulator\'s log cannot split them by corp)',
          String(cold.gettoken), `1 per corp = ${CORPS.length}`, false)]
    return {
      rows: variants.map((variant) => [variant, ...loginCells(runs[variant])]),
      lines: [
        `cold: ${cold.ok} logins succeeded, ${cold.failed} failed`,
        ...coldLines,
        `${variants[0]} / ${variants[1]} logins/s: ${times(scale)}`
      ]
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.close()))
  }
}
