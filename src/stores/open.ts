import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { ResolvedConfig } from '../options.js'
import { MemorySessionStore } from './memory.js'
import { RedisSessionStore, reconnectDelay } from './redis.js'
import type { SessionStore } from './store.js'

/** The @fastify/redis namespace of the connection the plugin opens from a `store.redis` URL. */
const NAMESPACE = 'wecomAuth'

/**
 * Picks the store the options ask for: Redis from a URL (a connection of the plugin's own), from
 * an ioredis client, or from the host's @fastify/redis; the in-process store otherwise, or when
 * `store.redis` is false.
 */
export async function openStore (fastify: FastifyInstance, config: ResolvedConfig, log: FastifyBaseLogger): Promise<SessionStore> {
  const { redis, keyPrefix } = config.store
  if (redis === false) return new MemorySessionStore({ maxSessions: config.session.maxSessions })
  if (typeof redis === 'string') return await redisStore(await connect(fastify, redis, log), keyPrefix, log)
  if (redis !== undefined) return await redisStore(redis, keyPrefix, log)
  const host = hostRedis(fastify)
  if (host !== undefined) {
    log.info('wecom: using the host\'s Redis (app.redis) for sessions and the WeCom access token')
    return await redisStore(host, keyPrefix, log)
  }
  return new MemorySessionStore({ maxSessions: config.session.maxSessions })
}

async function redisStore (client: Redis, keyPrefix: string, log: FastifyBaseLogger): Promise<SessionStore> {
  const store = new RedisSessionStore({ client, keyPrefix, log })
  await store.warnIfVolatile()
  return store
}

/**
 * Opens the connection through @fastify/redis inside an encapsulated child, so that its `redis`
 * decorator stays there and the host can still register its own. @fastify/redis quits it when
 * the app closes.
 */
async function connect (fastify: FastifyInstance, url: string, log: FastifyBaseLogger): Promise<Redis> {
  // Loaded only here: apps on the in-process store never load ioredis.
  const { default: fastifyRedis } = await import('@fastify/redis')
  let client: Redis | undefined
  await fastify.register(async (child) => {
    await child.register(fastifyRedis, {
      url,
      namespace: NAMESPACE,
      connectionName: 'fastify-wecom-auth',
      retryStrategy: reconnectDelay,
      // A command cut off by a disconnect fails instead of being replayed after the reconnect,
      // when the store has long answered 503 for it (a replayed rotate would look like theft).
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false
    })
    client = child.redis[NAMESPACE]
  })
  const own = client!
  // Without a listener ioredis prints every failed reconnect attempt; one line per outage is enough.
  let down = false
  own.on('error', (error: Error) => {
    if (!down) log.warn({ err: error }, 'wecom: Redis connection lost; sessions answer 503 until it is back')
    down = true
  })
  own.on('ready', () => {
    if (down) log.info('wecom: Redis connection is back')
    down = false
  })
  return own
}

/** The host's own @fastify/redis client, when it registered one (without a namespace) before us. */
function hostRedis (fastify: FastifyInstance): Redis | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  const candidate: unknown = fastify.redis
  return isClient(candidate) ? candidate : undefined
}

function isClient (value: unknown): value is Redis {
  return typeof value === 'object' && value !== null &&
    typeof (value as Redis).eval === 'function' && typeof (value as Redis).duplicate === 'function'
}
