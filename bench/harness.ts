import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import type { WecomSimulator } from 'fastify-wecom-auth/testing'
import type { AppSpec } from './app.js'
import { CORP_A, memberId, type BenchCorp } from './fixtures.js'
import type { FromServer, ToServer } from './protocol.js'
import { fixed, ms } from './report.js'

export interface ServerHandle {
  url: string
  /** Sends one message and waits for the reply of the same type. */
  ask<T extends ToServer['type']> (message: Extract<ToServer, { type: T }>): Promise<Extract<FromServer, { type: T }>>
  close (): Promise<void>
}

/** Starts server.ts in a child process (with --expose-gc, for the memory scenario). */
export async function spawnServer (spec: AppSpec): Promise<ServerHandle> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = once(child, 'exit')
  const first = await Promise.race([
    once(child, 'message').then(([message]) => message as FromServer),
    exited.then(([code]) => ({ type: 'failed', message: `server exited with code ${String(code)}` }) as const)
  ])
  if (first.type !== 'ready') {
    child.kill()
    throw new Error(first.type === 'failed' ? first.message : `unexpected ${first.type} from server`)
  }
  return {
    url: first.url,
    async ask (message) {
      const reply = once(child, 'message')
      child.send(message)
      // A child that dies mid-scenario must fail the run, not hang it.
      const [answer] = await Promise.race([
        reply,
        exited.then(([code]) => { throw new Error(`server exited with code ${String(code)} while asked ${message.type}`) })
      ]) as [FromServer]
      if (answer.type !== message.type) throw new Error(`asked ${message.type}, server answered ${answer.type}`)
      return answer as never
    },
    async close () {
      if (child.exitCode === null) child.disconnect()
      await exited
    }
  }
}

export interface LoadOptions {
  urls: string[]
  connections: number
  /** Seconds; or `bodies`, one request per body; or `amount` requests. */
  duration?: number
  amount?: number
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  /** One request each: the run ends when they are all answered. */
  bodies?: string[]
  /** A JSON body every request sends (a run of `duration`). */
  body?: string
  /** Authorization headers, taken in turn by the requests of all connections. */
  authorizations?: readonly string[]
  /** Where in `authorizations` the first request starts (0 when absent): a run can go on where the last stopped. */
  offset?: number
}

export interface LoadResult {
  /** 2xx answers per second. */
  rate: number
  ok: number
  failed: number
  p50: number
  p99: number
  /** From the start of the run to the last 2xx answer. */
  seconds: number
  /** Requests set up (sent, or about to be when the run ended). */
  requests: number
}

/**
 * One autocannon run. Latencies are kept exactly from each 2xx answer: autocannon's own
 * histogram rounds them down to whole milliseconds, too coarse for a 42 ms target.
 */
export async function load (options: LoadOptions): Promise<LoadResult> {
  const { bodies, authorizations } = options
  const amount = options.amount ?? bodies?.length
  const offset = options.offset ?? 0
  let next = 0
  const started = performance.now()
  const instance = autocannon({
    url: options.urls,
    connections: options.connections,
    ...(amount === undefined ? { duration: options.duration } : { amount }),
    timeout: 30,
    requests: [{
      method: options.method ?? 'GET',
      path: options.path,
      headers: { ...options.headers, ...(bodies === undefined && options.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(options.body === undefined ? {} : { body: options.body }),
      ...(bodies === undefined && authorizations === undefined
        ? {}
        : {
            setupRequest: (request) => {
              const n = next++
              return {
                ...request,
                ...(bodies === undefined ? {} : { body: bodies[n] }),
                ...(authorizations === undefined ? {} : { headers: { ...request.headers, authorization: authorizations[(offset + n) % authorizations.length] } })
              }
            }
          })
    }]
  })
  let lastAnswer = started
  const latencies: number[] = []
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 200 || statusCode >= 300) return
    latencies.push(responseTime)
    lastAnswer = performance.now()
  })
  const result = await instance
  latencies.sort((a, b) => a - b)
  // Not result.duration: a run of `amount` requests only ends on autocannon's next 1 s tick.
  const seconds = (lastAnswer - started) / 1000
  return {
    rate: result['2xx'] / seconds,
    ok: result['2xx'],
    failed: result.non2xx + result.errors + result.timeouts,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    seconds,
    requests: next
  }
}

/**
 * A run, with the server's CPU time per answered request (µs). The load generator shares the
 * machine's two cores: req/s can be its limit as much as the server's, while the server's CPU per
 * request is what a variant costs the server whatever limits the load generator.
 */
export interface ServedRun extends LoadResult { serverMicros: number }

/** One load() run against one server process, with what it cost that server's CPU. */
export function loadServed (server: ServerHandle, options: LoadOptions): Promise<ServedRun> {
  return served(server, () => load(options))
}

/** `run` (answering `ok` requests) with what it cost the server's CPU per answered request. */
export async function served<R extends { ok: number }> (server: ServerHandle, run: () => Promise<R>): Promise<R & { serverMicros: number }> {
  const before = await server.ask({ type: 'cpu' })
  const result = await run()
  const after = await server.ask({ type: 'cpu' })
  return { ...result, serverMicros: (after.micros - before.micros) / result.ok }
}

/** For medianRatio: the server's requests per CPU-second, so that like req/s more is better. */
export const cpuRate = (run: ServedRun) => 1e6 / run.serverMicros

function percentile (sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

export interface LoginRun extends LoadResult {
  /** WeCom calls the simulator counted, per successful login. */
  callsPerLogin: number
  gettoken: number
}

/** `count` logins with fresh single-use codes, issued before the run so that issuing is not timed. */
export async function loginLoad (sim: WecomSimulator, options: {
  urls: string[]
  path: string
  connections: number
  count: number
  /** Whose codes, taken in turn, each by the next member; a corp other than the first is named in the body, as the plugin asks. */
  corps?: readonly BenchCorp[]
  /** The body of login i instead, its code issued by the caller: a suite's `{ code, suiteId }` (scenario 8). */
  body?: (i: number) => object
}): Promise<LoginRun> {
  const corps = options.corps ?? [CORP_A]
  const bodies = Array.from({ length: options.count }, (_, i) => {
    if (options.body !== undefined) return JSON.stringify(options.body(i))
    // autocannon gives connection i to urls[i % urls.length]: every URL gets every corp in turn.
    const corp = corps[Math.floor(i / options.urls.length) % corps.length]
    const code = sim.issueCode(corp.corpId, memberId(i))
    return JSON.stringify(corp === CORP_A ? { code } : { code, corpId: corp.corpId })
  })
  const before = totalCalls(sim)
  const gettokenBefore = sim.calls.gettoken
  const result = await load({ urls: options.urls, path: options.path, method: 'POST', connections: options.connections, bodies })
  return {
    ...result,
    callsPerLogin: (totalCalls(sim) - before) / result.ok,
    gettoken: sim.calls.gettoken - gettokenBefore
  }
}

/** A login table's cells for a variant's runs: logins/s, p50, p99 (medians), WeCom calls per login, failed logins over all runs. */
export function loginCells (series: LoginRun[]): Array<string | number> {
  return [
    fixed(median(series.map((r) => r.rate)), 1),
    ms(median(series.map((r) => r.p50))),
    ms(median(series.map((r) => r.p99))),
    fixed(median(series.map((r) => r.callsPerLogin)), 2),
    series.reduce((n, r) => n + r.failed, 0)
  ]
}

/** A login's WeCom calls: a corp's own app's, and a suite's (none of which the other scenarios make). */
export function totalCalls (sim: WecomSimulator): number {
  const { calls } = sim
  return calls.gettoken + calls.jscode2session + calls['user/get'] +
    calls['service/get_suite_token'] + calls['service/get_corp_token'] + calls['service/miniprogram/jscode2session']
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * Runs every variant once per round, rotating which goes first, so that drift (thermal, GC,
 * a neighbour) hits all of them alike. Returns each variant's runs, in round order.
 */
export async function rounds<V extends string, R> (variants: readonly V[], count: number, run: (variant: V) => Promise<R>): Promise<Record<V, R[]>> {
  const runs = Object.fromEntries(variants.map((variant) => [variant, [] as R[]])) as Record<V, R[]>
  for (let round = 0; round < count; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length]
      runs[variant].push(await run(variant))
    }
  }
  return runs
}

/** The median over rounds of a ratio taken within each round: both sides of it ran back to back. */
export function medianRatio<R> (top: R[], bottom: R[], value: (run: R) => number): number {
  return median(top.map((run, i) => value(run) / value(bottom[i])))
}
