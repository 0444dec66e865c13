/**
 * A server child: the app under test gets a core of its own, while autocannon and the WeCom
 * simulator share the bench process. Started by spawnServer() with the AppSpec as argv[2].
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { getHeapSpaceStatistics } from 'node:v8'
import { buildApp, type AppSpec } from './app.js'
import { CORP_A } from './fixtures.js'
import type { FromServer, ToServer } from './protocol.js'
import { stubCode } from './wecom-stub.js'

const send = (message: FromServer) => process.send!(message)

const spec = JSON.parse(process.argv[2]!) as AppSpec
// Counted, not fatal: the fault soak reports how many the plugin let through (it must be none).
let unhandledRejections = 0
process.on('unhandledRejection', (reason) => {
  unhandledRejections++
  console.error('unhandled rejection:', reason)
})
let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp(spec)
  send({ type: 'ready', url: await app.listen({ host: '127.0.0.1', port: 0 }) })
} catch (error) {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
  process.exit(1)
}

/**
 * The memory scenario's logins (WecomStub codes), 64 at a time, through app.wecom.login: the
 * route's flow and session without the HTTP layer, which keeps nothing per login and would
 * otherwise be most of the CPU time.
 */
async function login (from: number, count: number): Promise<number> {
  return await failures(count, (n) => app.wecom.login(stubCode(CORP_A.corpId, `m${from + n}`)))
}

/** Runs `work` for 0 … count - 1, `concurrency` at a time: how many rejected. */
async function failures (count: number, work: (n: number) => Promise<unknown>, concurrency = 64): Promise<number> {
  let next = 0
  let failed = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      try {
        await work(next++)
      } catch {
        failed++
      }
    }
  }))
  return failed
}

/** Scenario 8: every corp's token taken into this process's cache (from Redis, or WeCom if none is there). */
async function tokens (corpIds: string[]): Promise<number> {
  return await failures(corpIds.length, (n) => app.wecom.accessToken(corpIds[n]))
}

async function measureMemory (settle = 500): Promise<FromServer> {
  // What a run leaves pending (finalizers, immediates) is freed soon after going idle: measure
  // what stays, not what is on its way out.
  globalThis.gc?.()
  await sleep(settle)
  globalThis.gc?.()
  globalThis.gc?.()
  const largeObjects = getHeapSpaceStatistics().find((space) => space.space_name === 'large_object_space')?.space_used_size ?? 0
  return { type: 'memory', usage: process.memoryUsage(), largeObjects, unhandledRejections }
}

function cpu (): FromServer {
  const { user, system } = process.cpuUsage()
  return { type: 'cpu', micros: user + system }
}

function answer (message: ToServer): Promise<FromServer> {
  switch (message.type) {
    case 'memory': return measureMemory(message.settle)
    case 'cpu': return Promise.resolve(cpu())
    case 'logins': return login(message.from, message.count).then((failed) => ({ type: 'logins', failed }))
    case 'tokens': return tokens(message.corpIds).then((failed) => ({ type: 'tokens', failed }))
  }
}

process.on('message', (message: ToServer) => {
  const done = answer(message).then(send)
  // A failure here is a broken bench: end the child loudly rather than leave the parent waiting.
  done.catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
})
process.on('disconnect', () => {
  app.close().finally(() => process.exit(0))
})
