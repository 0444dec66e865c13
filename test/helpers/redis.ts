import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import type { WecomAuthOptions } from '../../src/index.js'
import type { WecomSimulator } from '../../src/testing/simulator.js'
import { killAtExit } from './children.js'
import { buildApp, CORP_A, type Extend, type LogCapture } from './setup.js'

export interface RedisServer {
  url: string
  port: number
  /** Stops the server (its data is lost, unless started with `persist`). */
  stop (): Promise<void>
  /** Starts it again on the same port. */
  start (): Promise<void>
}

export interface TestLike {
  teardown (fn: () => unknown): void
  test (name: string, extra: { skip: string }, fn: () => void): unknown
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server'
const START_TIMEOUT = 5000

/**
 * A redis-server of the test's own on a free loopback port, stopped at teardown. Without a
 * working redis-server the test fails under CI=true (the Redis tests must run there) and is
 * skipped with the reason elsewhere: then `undefined` is returned and the test should return.
 */
export async function startRedis (t: TestLike, options: { persist?: boolean } = {}): Promise<RedisServer | undefined> {
  let lastError: unknown
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    // `persist`: its data survives a stop and a start, as a production Redis's does (saved at shutdown).
    const dir = options.persist === true ? await mkdtemp(join(tmpdir(), 'wecom-redis-')) : undefined
    try {
      const server = await launch(port, dir)
      t.teardown(async () => {
        await server.stop()
        if (dir !== undefined) await rm(dir, { recursive: true, force: true })
      })
      return server
    } catch (error) {
      lastError = error
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    }
  }
  return skipOrFail(t, `redis-server could not start: ${(lastError as Error).message}`)
}

/**
 * Without the Redis a test needs: fails under CI=true (the Redis tests must run there), and
 * elsewhere skips with the reason and returns undefined. A skipped test says why; a plan of 0
 * would end the process's root test, which the files of test/core/ and test/redis/ share
 * (helpers/group.ts).
 */
export function skipOrFail (t: TestLike, reason: string): undefined {
  if (process.env.CI === 'true') throw new Error(reason)
  t.test('needs Redis', { skip: reason }, () => {})
  return undefined
}

async function launch (port: number, dir?: string): Promise<RedisServer> {
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const saving = dir === undefined ? ['--save', ''] : ['--save', '3600 1', '--dir', dir]
    const spawned = spawn(BINARY, [
      '--port', String(port), '--bind', '127.0.0.1', ...saving, '--appendonly', 'no', '--daemonize', 'no'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    child = spawned
    // A test that crashes must not leave a redis-server behind.
    killAtExit(spawned)
    const failed = new Promise<never>((_resolve, reject) => {
      spawned.once('error', reject)
      spawned.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} (port ${port})`)))
    })
    failed.catch(() => {})
    const deadline = Date.now() + START_TIMEOUT
    // Its own process ID: a Redis of another test may have taken the port first.
    while (await Promise.race([serverPid(port), failed]) !== spawned.pid) {
      if (Date.now() > deadline) {
        spawned.kill('SIGKILL')
        throw new Error(`redis-server did not answer within ${START_TIMEOUT} ms`)
      }
      await sleep(25)
    }
  }

  async function stop (): Promise<void> {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = once(running, 'exit')
    running.kill('SIGTERM')
    const forced = setTimeout(() => running.kill('SIGKILL'), 2000)
    await exited
    clearTimeout(forced)
  }

  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start
  }
}

/** Ports handed out in this process: a stopped server's port stays its own, for its restart. */
const handedOut = new Set<number>()

/** A loopback port nothing listens on, and none handed out before in this process. */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
}

/**
 * One command's reply from the server on `port`, over a connection of its own. Not through
 * redis-cli: a process per poll cost the Redis tests' process seconds of CPU in spawns.
 */
export async function ask (port: number, ...command: string[]): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true, connectTimeout: 1000 })
  // Refused while the server starts: the caller asks again; the reason is not news.
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(command[0], ...command.slice(1))
  } finally {
    client.disconnect()
  }
}

/** The process ID of the Redis on `port`; undefined while nothing answers there. */
export async function serverPid (port: number): Promise<number | undefined> {
  const info = await ask(port, 'info', 'server').catch(() => undefined)
  const pid = /process_id:(\d+)/.exec(String(info))?.[1]
  return pid === undefined ? undefined : Number(pid)
}

export interface RedisApp {
  app: FastifyInstance
  logs: LogCapture
  /** wx.qy.login for a member, then POST /wecom/login. */
  login (userid: string, corpId?: string): Promise<LightMyRequestResponse>
  refresh (refreshToken: string): Promise<LightMyRequestResponse>
  me (accessToken: string): Promise<LightMyRequestResponse>
  close (): Promise<void>
}

/** An app of the test harness on the given store, closed at teardown (or earlier by `close`). */
export async function redisApp (
  t: TestLike, sim: WecomSimulator, store: WecomAuthOptions['store'], options: Partial<WecomAuthOptions> = {}, extend?: Extend
): Promise<RedisApp> {
  const { app, logs } = await buildApp({ ...options, store }, sim, extend)
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => (closing ??= app.close())
  t.teardown(close)
  return {
    app,
    logs,
    close,
    login: (userid, corpId = CORP_A) => app.inject({
      method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(corpId, userid), corpId }
    }),
    refresh: (refreshToken) => app.inject({
      method: 'POST', url: '/wecom/refresh', payload: { refresh_token: refreshToken }
    }),
    me: (accessToken) => app.inject({
      method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${accessToken}` }
    })
  }
}

/** Polls `check` every 20 ms until it holds or `within` ms passed; returns whether it held. */
export async function eventually (within: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + within
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await sleep(20)
  }
}
