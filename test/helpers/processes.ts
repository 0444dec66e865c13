import { spawn } from 'node:child_process'
import type { Socket } from 'node:net'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { childEnv, compiled, killAtExit } from './children.js'
import { CORP_A, CORP_B, simulatorCorps } from './setup.js'

export const WORKERS = 4
const LOGINS_EACH = 25
const WORKER = new URL('../fixtures/login-worker.ts', import.meta.url)

interface Worker {
  /** Writes `line` to its stdin; its next line of stdout. Fails once it exited. */
  ask (line: string): Promise<string>
  kill (): void
}

function startWorker (bundle: string): Worker {
  const child = spawn(process.execPath, [bundle], { env: childEnv() })
  killAtExit(child)
  // Kept between tests, it must not keep this process alive: its pipe is counted only while a
  // line is awaited, and stdin's end (this process exiting) ends it.
  const stdout = child.stdout as Socket
  child.unref()
  for (const pipe of [child.stdin, stdout, child.stderr]) (pipe as Socket).unref()
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const waiting: Array<{ resolve: (line: string) => void, reject: (error: Error) => void }> = []
  let exited: Error | undefined
  createInterface({ input: stdout }).on('line', (line) => {
    if (waiting.length === 1) stdout.unref()
    waiting.shift()?.resolve(line)
  })
  child.once('exit', (code, signal) => {
    exited = new Error(`login worker exited with ${code ?? signal}: ${stderr}`)
    for (const { reject } of waiting.splice(0)) reject(exited)
  })
  return {
    ask (line) {
      if (exited !== undefined) return Promise.reject(exited)
      stdout.ref()
      child.stdin.write(`${line}\n`)
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
    },
    kill: () => child.kill('SIGKILL')
  }
}

// The four processes, started by the first test that needs them and kept for the others; one
// test at a time uses them.
let pool: Promise<Worker[]> | undefined
let turns: Promise<unknown> = Promise.resolve()

function workers (): Promise<Worker[]> {
  pool ??= compiled(WORKER).then((bundle) => Array.from({ length: WORKERS }, () => startWorker(bundle)))
  return pool
}

/** Four instances on `redis` (a URL, or a JSON list of Cluster node URLs) log in together on a cold cache. */
export async function oneGettokenPerCorp (t: Test, redis: string): Promise<void> {
  const sim = await createWecomSimulator({ corps: simulatorCorps(), latency: 20 })
  t.teardown(() => sim.close())

  const turn = turns.then(async () => {
    const all = await workers()
    // Four processes boot slowly on a small, loaded CI machine: generous, but never hanging (45 s
    // ran out at a load of 14 when they loaded the sources through tsx). A killed worker fails
    // this test and every later one, not just this wait.
    const watchdog = setTimeout(() => { for (const worker of all) worker.kill() }, 100_000)
    try {
      await Promise.all(all.map((worker) => {
        const codes = Array.from({ length: LOGINS_EACH }, (_, i) => i % 2 === 0
          ? { corpId: CORP_A, code: sim.issueCode(CORP_A, 'zhangsan') }
          : { corpId: CORP_B, code: sim.issueCode(CORP_B, 'zhaoliu') })
        return worker.ask(JSON.stringify({ redis, sim: sim.url, codes }))
      }))
      t.equal(sim.calls.gettoken, 0, 'booting asks WeCom nothing')
      return await Promise.all(all.map(async (worker) => JSON.parse(await worker.ask('go')) as number[]))
    } finally {
      clearTimeout(watchdog)
    }
  })
  turns = turn.catch(() => {})
  const statuses = await turn

  t.same(statuses.flat(), Array(WORKERS * LOGINS_EACH).fill(200), 'every login succeeded')
  t.equal(sim.calls.gettoken, 2, 'one gettoken for each of the two corps, across all processes')
}
