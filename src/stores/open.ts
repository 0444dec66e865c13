import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ClusterOptions, Redis, RedisOptions } from 'ioredis'
import type { ResolvedConfig } from '../options.js'
import { MemorySessionStore } from './memory.js'
import { describeRedis, reconnectDelay, type RedisClient } from './redis/connection.js'
import { warnIfVolatile } from './redis/persistence.js'
import { RedisSessionStore } from './redis/sessions.js'
import type { SessionStore } from './store.js'

/** What the plugin opened and must close, beside the store itself. */
export interface OpenedStore {
  store: SessionStore
  /** Closes the connection the plugin opened from a URL; nothing for a client it was given. */
  closeConnection (): Promise<void>
}

const nothing = async (): Promise<void> => {}

/**
 * Picks the store the options ask for: Redis from a URL or a list of Cluster node URLs (a
 * connection of the plugin's own), from an ioredis client (one server, Sentinel or Cluster), or
 * from the host's @fastify/redis; the in-process store otherwise, or when `store.redis` is false.
 *
 * Whatever state Redis is in, boot goes on within a few seconds: the store runs degraded (sessions
 * answer 503, logins come without refresh tokens) and recovers by itself when Redis answers, for a
 * URL and for a client alike. Only a client that can never answer (closed by its owner) fails the
 * registration, with an error naming the plugin, the address (no password) and the cause.
 */
export async function openStore (fastify: FastifyInstance, config: ResolvedConfig, log: FastifyBaseLogger): Promise<OpenedStore> {
  const { redis, keyPrefix } = config.store
  const memory = (): OpenedStore => ({ store: new MemorySessionStore({ maxSessions: config.session.maxSessions }), closeConnection: nothing })
  if (redis === false) return memory()
  if (typeof redis === 'string' || Array.isArray(redis)) {
    const client = await connect(redis)
    // disconnect, not quit: a quit waits for a Redis that may not be there.
    return { store: await redisStore(client, keyPrefix, log), closeConnection: async () => { client.disconnect() } }
  }
  if (redis !== undefined) return { store: await redisStore(usable(redis), keyPrefix, log), closeConnection: nothing }
  const host = hostRedis(fastify)
  if (host !== undefined) {
    log.info('wecom: using the host\'s Redis (app.redis) for sessions and the WeCom access token')
    return { store: await redisStore(usable(host), keyPrefix, log), closeConnection: nothing }
  }
  return memory()
}

async function redisStore (client: RedisClient, keyPrefix: string, log: FastifyBaseLogger): Promise<SessionStore> {
  const store = new RedisSessionStore({ client, keyPrefix, log })
  await warnIfVolatile(client, log)
  return store
}

/**
 * The plugin's own connection. Not through @fastify/redis: it holds the boot until Redis answers,
 * and fails it after Fastify's plugin timeout when Redis is down, where a session store can run
 * degraded and catch up. The host's own @fastify/redis is still reused when there is one.
 */
async function connect (urls: string | readonly string[]): Promise<RedisClient> {
  // Loaded only here: apps on the in-process store never load ioredis.
  const { Cluster, Redis } = await import('ioredis')
  const common: RedisOptions = {
    connectionName: 'fastify-wecom-auth',
    // A command cut off by a disconnect fails instead of being replayed after the reconnect,
    // when the store has long answered 503 for it (a replayed rotate would look like theft).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false
  }
  const client = typeof urls === 'string'
    ? new Redis(urls, { ...common, retryStrategy: reconnectDelay })
    : cluster(Cluster, urls, common)
  // Heard, so that ioredis does not print each failed attempt; the store tells an outage once.
  client.on('error', () => {})
  return client
}

function cluster (Cluster: typeof import('ioredis').Cluster, urls: readonly string[], common: RedisOptions): RedisClient {
  const nodes = urls.map((url) => new URL(url))
  const first = nodes[0]!
  const options: ClusterOptions = {
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      ...common,
      ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
      ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {})
    }
  }
  return new Cluster(nodes.map((node) => ({ host: node.hostname, port: Number(node.port || 6379) })), options)
}

/** A client as its owner left it: a lazy one is connected; a closed one can never serve. */
function usable (client: RedisClient): RedisClient {
  if (client.status === 'end') {
    throw new Error(`fastify-wecom-auth: the Redis client given for store.redis (${describeRedis(client)}) was closed by its owner (status end); give an open client`)
  }
  // Its errors reach the owner's own listeners; the store tells an outage once, from its own connection.
  if (client.status === 'wait') client.connect().catch(() => {})
  return client
}

/** The host's own @fastify/redis client, when it registered one (without a namespace) before us. */
function hostRedis (fastify: FastifyInstance): Redis | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  // Read without @fastify/redis's types: the plugin does not load it to find out.
  const candidate: unknown = (fastify as unknown as { redis?: unknown }).redis
  return isClient(candidate) ? candidate : undefined
}

function isClient (value: unknown): value is Redis {
  return typeof value === 'object' && value !== null &&
    typeof (value as Redis).eval === 'function' && typeof (value as Redis).duplicate === 'function'
}
