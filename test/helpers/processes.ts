import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { childEnv, compiled } from './children.js'
import { CORP_A, CORP_B, simulatorCorps } from './setup.js'

export const WORKERS = 4
const LOGINS_EACH = 25
const WORKER = new URL('../fixtures/login-worker.ts', import.meta.url)

interface Worker {
  child: ChildProcessWithoutNullStreams
  ready: Promise<void>
  /** The status codes of its logins, once it exited by itself. */
  done: Promise<number[]>
}

function startWorker (bundle: string, env: Record<string, string>): Worker {
  const child = spawn(process.execPath, [bundle], { env: childEnv(env) })
  let stdout = ''
  let stderr = ''
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => { onReady = resolve })
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
    if (stdout.startsWith('ready\n')) onReady()
  })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const done = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`worker exited with ${code}: ${stderr}`)
    return JSON.parse(stdout.split('\n')[1]) as number[]
  })
  // A worker that dies before it is ready fails `done`; `ready` must not wait for it forever.
  done.catch(onReady)
  return { child, ready, done }
}

/** Four instances on `redis` (a URL, or a JSON list of Cluster node URLs) log in together on a cold cache. */
export async function oneGettokenPerCorp (t: Test, redis: string): Promise<void> {
  const sim = await createWecomSimulator({ corps: simulatorCorps(), latency: 20 })
  t.teardown(() => sim.close())

  const bundle = await compiled(WORKER)
  const workers = Array.from({ length: WORKERS }, () => {
    const codes = Array.from({ length: LOGINS_EACH }, (_, i) => i % 2 === 0
      ? { corpId: CORP_A, code: sim.issueCode(CORP_A, 'zhangsan') }
      : { corpId: CORP_B, code: sim.issueCode(CORP_B, 'zhaoliu') })
    return startWorker(bundle, { REDIS_URL: redis, SIM_URL: sim.url, LOGIN_CODES: JSON.stringify(codes) })
  })
  // Four processes boot slowly on a small, loaded CI machine: generous, but never hanging (45 s
  // ran out at a load of 14 when they loaded the sources through tsx).
  const watchdog = setTimeout(() => { for (const { child } of workers) child.kill('SIGKILL') }, 100_000)
  t.teardown(() => clearTimeout(watchdog))

  await Promise.all(workers.map((worker) => worker.ready))
  t.equal(sim.calls.gettoken, 0, 'booting asks WeCom nothing')
  for (const { child } of workers) child.stdin.end()
  const statuses = await Promise.all(workers.map((worker) => worker.done))

  t.same(statuses.flat(), Array(WORKERS * LOGINS_EACH).fill(200), 'every login succeeded')
  t.equal(sim.calls.gettoken, 2, 'one gettoken for each of the two corps, across all processes')
}
