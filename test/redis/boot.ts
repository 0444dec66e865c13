import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyWecomAuth from '../../src/index.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { childEnv, compiled } from '../helpers/children.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, JWT_SECRET, SECRET_A, simulatorCorps } from '../helpers/setup.js'

// Whatever state Redis is in at boot, the same behaviour for a URL and for a client: boot ends
// within a few seconds, the plugin runs degraded (logins without refresh tokens, refresh 503), says
// so once naming the address (never a password) and the cause, and recovers by itself.

/** Boot within a few seconds: the store waits up to 3 s for Redis (readiness, then the first sync). */
const BOOT_BOUND = 6000

const PLUGIN = new URL('../../src/index.ts', import.meta.url)

// Most of this file is waiting (for boot's few seconds, for recovery), beside the other tests of
// the folder (helpers/group.ts). Those that stop their Redis or change its password have one of
// their own.

const redis = await startRedis(t)
if (redis !== undefined) {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())

  const shapes = [
    ['a URL', (_t: Test, url: string) => url],
    ['a client', (t: Test, url: string) => {
      const client = new Redis(url, { retryStrategy: (attempt: number) => Math.min(attempt * 100, 500) })
      client.on('error', () => {})
      t.teardown(() => client.disconnect())
      return client
    }]
  ] as const

  for (const [shape, redisOption] of shapes) {
    t.test(`Redis down at boot, given as ${shape}: boots degraded, recovers within 2 s of Redis starting`, async (t) => {
      const own = await startRedis(t)
      if (own === undefined) return
      await own.stop()
      const started = Date.now()
      const a = await redisApp(t, sim, { redis: redisOption(t, own.url), keyPrefix: 'boot:' })
      t.ok(Date.now() - started < BOOT_BOUND, `booted in ${Date.now() - started} ms`)
      const said = a.logs.records.filter((r) => /wecom: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 (cannot be reached|did not answer)/.test(String(r.msg)))
      t.ok(said.length >= 1 && said.length <= 2, 'said at boot, naming the address')
      t.match(JSON.stringify(said), /ECONNREFUSED|status/, 'and the cause')

      const login = await a.login('zhangsan')
      t.equal(login.statusCode, 200, 'a member still logs in')
      t.notOk('refresh_token' in login.json(), 'without a refresh token while Redis is down')

      await own.start()
      const back = Date.now()
      t.ok(await eventually(2000, async () => typeof (await a.login('zhangsan')).json().refresh_token === 'string'),
        'recovered without a restart')
      t.ok(Date.now() - back <= 2500, `${Date.now() - back} ms after Redis started`)
    })
  }

  t.test('a password never reaches a log line; a refused auth is said with its cause', async (t) => {
    const own = await startRedis(t)
    if (own === undefined) return
    const admin = new Redis(own.url)
    t.teardown(() => admin.quit())
    await admin.config('SET', 'requirepass', 'the-redis-password-123')
    await admin.auth('the-redis-password-123')
    const url = own.url.replace('redis://', 'redis://:wrong-password-456@')
    const a = await redisApp(t, sim, { redis: url, keyPrefix: 'auth:' })
    t.equal((await a.login('zhangsan')).statusCode, 200)
    const everything = a.logs.lines.join('\n')
    t.notOk(everything.includes('wrong-password-456'), `no password in the logs: ${a.logs.lines.filter((l) => l.includes('wrong-password-456')).join(' | ').slice(0, 600)}`)
    t.match(everything, /wecom: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 (cannot be reached \(WRONGPASS|did not answer)/)
  })

  t.test('a client closed by its owner fails the registration with an error naming the plugin and the address', async (t) => {
    const closed = new Redis(redis.url)
    await closed.quit()
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => await app.register(fastifyWecomAuth, {
      corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET }, store: { redis: closed }
    }), /fastify-wecom-auth: .*redis:\/\/127\.0\.0\.1:\d+\/0.*closed by its owner/)
  })

  t.test('a lazy client is connected and used', async (t) => {
    const lazy = new Redis(redis.url, { lazyConnect: true })
    t.teardown(() => lazy.quit())
    const a = await redisApp(t, sim, { redis: lazy, keyPrefix: 'lazy:' })
    t.type((await a.login('zhangsan')).json().refresh_token, 'string')
  })

  t.test('two deployments that differ only by ioredis keyPrefix do not hear each other\'s revocations', async (t) => {
    const client = (keyPrefix: string) => {
      const c = new Redis(redis.url, { keyPrefix })
      t.teardown(() => c.quit())
      return c
    }
    const one = await redisApp(t, sim, { redis: client('deployment-1:') })
    const two = await redisApp(t, sim, { redis: client('deployment-2:') })
    const login = (await one.login('zhangsan')).json()
    const [sid] = login.refresh_token.split('.')
    // The same sid revoked in the other deployment (as a replay of its channel would carry it).
    await two.app.wecom.revokeSession(sid)
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal((await one.me(login.access_token)).statusCode, 200, 'not revoked across deployments')
    await one.app.wecom.revokeSession(sid)
    t.ok(await eventually(1000, async () => (await one.me(login.access_token)).statusCode === 401))
  })

  /** Runs `body` in a process of its own after registering the plugin on `url`; what it printed, and how it ended. */
  async function inProcess (url: string, body: string): Promise<{ out: string, code: number | null, signal: string | null }> {
    const script = `
      import Fastify from 'fastify'
      import plugin from '${pathToFileURL(await compiled(PLUGIN)).href}'
      const app = Fastify()
      app.register(plugin, { corps: [{ corpId: 'ww1', secret: 's' }], jwt: { secret: '${JWT_SECRET}' }, store: { redis: '${url}' } })
      ${body}
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    // Boot waits a few seconds for a dead Redis; after that, nothing may keep the process alive.
    // Killed only after 60 s, for a process kept alive would never exit: it needs node's start
    // (20 s was once not enough at a load of 13, through tsx), boot's 3 s and ioredis's 2 s
    // disconnectTimeout on a socket that never connected.
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const [code, signal] = await once(child, 'exit') as [number | null, string | null]
    clearTimeout(killer)
    return { out: out.trim(), code, signal }
  }

  t.test('a process that booted on a dead Redis and closed exits by itself', async (t) => {
    const own = await startRedis(t)
    if (own === undefined) return
    await own.stop()
    const ended = await inProcess(own.url, 'await app.ready(); await app.close(); console.log(\'closed\')')
    t.same(ended, { out: 'closed', code: 0, signal: null }, 'not killed: it exited by itself')
  })
}
