import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { ask, freePort, serverPid, skipOrFail, type TestLike } from './redis.js'
import { killAtExit } from './children.js'

// Redis as companies run it, started by the tests from Debian's redis-server and redis-cli on free
// loopback ports: a Cluster of three primaries, and a Sentinel-managed primary with a replica.

const SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const CLI = process.env.REDIS_CLI ?? 'redis-cli'
const run = promisify(execFile)

export interface RedisNode {
  port: number
  /** Kills the process at once, as a crash would. */
  kill (): void
}

/** Fails the test under CI=true, skips it elsewhere, when the servers cannot be had. */
async function orSkip<T> (t: TestLike, start: () => Promise<T>): Promise<T | undefined> {
  try {
    return await start()
  } catch (error) {
    return skipOrFail(t, `redis topology could not start: ${(error as Error).message}`)
  }
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort (): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port + 10_000 > 65_535) continue
    const bus = await freePort()
    if (bus !== port + 10_000) return port
  }
}

/**
 * redis-server with `args(port)` on a port of `choose`, once it answers as itself. Another
 * process may take the port between choosing and binding, a Redis of another test even, which
 * would answer too: then another port.
 */
async function spawnNode (t: TestLike, args: (port: number) => string[] | Promise<string[]>, choose: () => Promise<number> = freePort): Promise<RedisNode> {
  for (let attempt = 1; ; attempt++) {
    const port = await choose()
    const argv = await args(port)
    const child: ChildProcess = spawn(SERVER, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
    const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
    killAtExit(child)
    t.teardown(kill)
    const deadline = Date.now() + 5000
    while (await serverPid(port) !== child.pid && child.exitCode === null) {
      if (Date.now() > deadline) throw new Error(`${SERVER} on port ${port} did not answer within 5 s`)
      await sleep(25)
    }
    if (child.exitCode === null) return { port, kill }
    if (attempt === 3) throw new Error(`${SERVER} ${argv.join(' ')} exited with code ${child.exitCode}`)
  }
}

async function workDir (t: TestLike): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wecom-auth-redis-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface RedisCluster {
  nodes: RedisNode[]
  /** `redis://127.0.0.1:<port>` of every primary. */
  urls: string[]
}

/** A Redis Cluster of `primaries` primaries (no replicas, no persistence), ready for commands. */
export function startCluster (t: TestLike, primaries = 3): Promise<RedisCluster | undefined> {
  return orSkip(t, async () => {
    const dir = await workDir(t)
    const nodes: RedisNode[] = []
    for (let i = 0; i < primaries; i++) {
      nodes.push(await spawnNode(t, (port) => [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
        '--save', '', '--appendonly', 'no', '--daemonize', 'no'
      ], freeClusterPort))
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
    await run(CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    // Every node must agree that all slots are served before the first command.
    const deadline = Date.now() + 10_000
    for (const node of nodes) {
      while (!String(await ask(node.port, 'cluster', 'info')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok within 10 s')
        await sleep(100)
      }
    }
    return { nodes, urls: nodes.map((node) => `redis://127.0.0.1:${node.port}`) }
  })
}

export interface RedisSentinels {
  /** The name Sentinel monitors the primary under. */
  name: string
  primary: RedisNode
  replica: RedisNode
  sentinels: RedisNode[]
}

/**
 * A primary, its replica and three sentinels (quorum 2) that fail it over a second after it stops
 * answering.
 */
export function startSentinels (t: TestLike): Promise<RedisSentinels | undefined> {
  return orSkip(t, async () => {
    const dir = await workDir(t)
    const name = 'wecom-auth'
    // --dir: a replica's full sync writes an RDB file even with saving off.
    const node = (extra: string[]): Promise<RedisNode> =>
      spawnNode(t, (port) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extra])
    const primary = await node([])
    const replica = await node(['--replicaof', '127.0.0.1', String(primary.port)])
    const sentinels: RedisNode[] = []
    for (let i = 0; i < 3; i++) {
      // Sentinel rewrites its configuration file: one each, in the test's own directory.
      sentinels.push(await spawnNode(t, async (port) => {
        const file = join(dir, `sentinel-${port}.conf`)
        await writeFile(file, [
          `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`, ''
        ].join('\n'))
        return [file, '--sentinel']
      }))
    }
    // The replica must have synced before anyone relies on it taking over.
    const deadline = Date.now() + 10_000
    while (!String(await ask(replica.port, 'info', 'replication')).includes('master_link_status:up')) {
      if (Date.now() > deadline) throw new Error('the replica did not sync within 10 s')
      await sleep(100)
    }
    return { name, primary, replica, sentinels }
  })
}

/** The port Sentinel now names as the primary. */
export async function currentPrimary (setup: RedisSentinels): Promise<number> {
  const [, port] = await ask(setup.sentinels[0].port, 'sentinel', 'get-master-addr-by-name', setup.name) as [string, string]
  return Number(port)
}
