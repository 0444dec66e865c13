import type { Cluster, Redis } from 'ioredis'
import { StoreDownError } from '../store.js'

/**
 * How long one command may take before Redis counts as down. ioredis queues commands while it
 * reconnects; without this bound a login or a refresh would hang for the whole outage.
 */
export const COMMAND_TIMEOUT = 1000

/**
 * Reconnects at most a second apart: ioredis's default backs off to five seconds, which would keep
 * sessions answering 503 (and revocations unheard) that long after Redis is back.
 */
export function reconnectDelay (attempt: number): number {
  return Math.min(attempt * 100, 1000)
}

/** One server (alone or under Sentinel) or a Cluster: the store speaks to both alike. */
export type RedisClient = Redis | Cluster

/** The error a failed command is reported as: StoreDownError for sessions, SharedStoreError for tokens. */
type Failure = new (cause: unknown) => Error

/** Runs one command (or script) on the connection it was made for: see {@link commands}. */
export type Run = <T>(operation: (client: RedisClient) => Promise<T>) => Promise<T>

/** One command (or script) on a ready connection, within COMMAND_TIMEOUT, failing as `Failure`. */
export async function bounded<T> (client: RedisClient, Failure: Failure, operation: (client: RedisClient) => Promise<T>): Promise<T> {
  if (client.status !== 'ready') throw new Failure(new Error(`redis connection is ${client.status}`))
  let timer: NodeJS.Timeout | undefined
  const pending = operation(client)
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${COMMAND_TIMEOUT} ms`)), COMMAND_TIMEOUT)
  })
  try {
    return await Promise.race([pending, timeout])
  } catch (error) {
    throw new Failure(error)
  } finally {
    clearTimeout(timer)
    // A command given up on may still fail later: that is no unhandled rejection.
    pending.catch(noop)
  }
}

/** Every command of one part of the store on `client`, each bounded and failing as `Failure`. */
export function commands (client: RedisClient, Failure: Failure): Run {
  return (operation) => bounded(client, Failure, operation)
}

/** A duration as PX takes it: whole ms, at least one. */
export function px (ms: number): number {
  return Math.max(1, Math.ceil(ms))
}

/** Parses what the store wrote; anything else under its key (another program's value) is the store failing. */
export function parseJson<T> (raw: string, Failure: Failure = StoreDownError): T {
  try {
    return JSON.parse(raw) as T
  } catch (error) {
    throw new Failure(error)
  }
}

/** ioredis's own keyPrefix, which it puts in front of every key, but not of channel names. */
export function keyPrefixOf (client: RedisClient): string {
  return (client.options as { keyPrefix?: string }).keyPrefix ?? ''
}

function isCluster (client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/** A connection like `client` (same nodes, auth, TLS, Sentinel set) for the revocation channel. */
export function duplicateForSubscribing (client: RedisClient): RedisClient {
  return isCluster(client)
    ? client.duplicate(undefined, { clusterRetryStrategy: reconnectDelay, lazyConnect: false })
    : client.duplicate({ autoResubscribe: false, lazyConnect: false, retryStrategy: reconnectDelay })
}

export function reconnect (client: RedisClient): void {
  if (isCluster(client)) {
    // A Cluster has no disconnect(reconnect): dropping its connections makes it refresh and reconnect.
    for (const node of client.nodes()) node.disconnect(true)
  } else {
    client.disconnect(true)
  }
}

/**
 * Where a client points, for log lines and errors: never its password. A Sentinel set by its
 * name and sentinels, a Cluster by the nodes it was given.
 */
export function describeRedis (client: RedisClient): string {
  if (isCluster(client)) {
    const nodes = (client as unknown as { startupNodes?: Array<string | number | { host?: string, port?: number }> }).startupNodes ?? []
    return `cluster ${nodes.map((node) => typeof node === 'object' ? `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}` : nodeAddress(node)).join(',')}`
  }
  const { sentinels, name, host, port, path, username, db, tls } = client.options
  if (sentinels != null && sentinels.length > 0) {
    return `sentinel ${name ?? ''} via ${sentinels.map((sentinel) => `${sentinel.host ?? '127.0.0.1'}:${sentinel.port ?? 26379}`).join(',')}`
  }
  if (path != null) return `unix:${path}`
  return `${tls == null ? 'redis' : 'rediss'}://${username == null || username === '' ? '' : `${username}@`}${host ?? '127.0.0.1'}:${port ?? 6379}/${db ?? 0}`
}

/**
 * A Cluster node given as a string or a port, as ioredis keeps it: `redis://:password@host:port`
 * says only `host:port`, and a string that is not a URL only what follows its last '@'.
 */
function nodeAddress (node: string | number): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`
  if (/^rediss?:\/\//.test(node)) {
    try {
      const url = new URL(node)
      return `${url.hostname}:${url.port === '' ? 6379 : url.port}`
    } catch {}
  }
  return node.slice(node.lastIndexOf('@') + 1)
}

/** An error's code or class: ioredis messages can repeat the command and its arguments. */
export function errorCause (error: Error): string {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : /^(WRONGPASS|NOAUTH|NOPERM|LOADING|READONLY|MASTERDOWN)\b/.exec(error.message)?.[1] ?? error.name
}

export function noop (): void {}
