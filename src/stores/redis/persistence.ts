import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { StoreDownError } from '../store.js'
import { bounded, COMMAND_TIMEOUT, errorCause, type RedisClient } from './connection.js'

/**
 * Warns once when this Redis keeps nothing on disk: a restart of it would forget every session
 * (members log in again) and every recorded revocation (a new instance would accept revoked
 * tokens). Managed Redis often refuses CONFIG: then nothing can be told, and only debug says so.
 * Never rejects.
 */
export async function warnIfVolatile (client: RedisClient, log: FastifyBaseLogger | undefined): Promise<void> {
  try {
    if (client.status !== 'ready') {
      await Promise.race([once(client, 'ready'), sleep(COMMAND_TIMEOUT, undefined, { ref: false })])
    }
    const [appendonly, save] = await Promise.all(['appendonly', 'save'].map((name) =>
      bounded(client, StoreDownError, async (connection) => configValue(await connection.config('GET', name), name))))
    if (appendonly === 'no' && save === '') {
      log?.warn('wecom: Redis persists nothing (appendonly no, no save points): a Redis restart drops every session and every recorded revocation; use appendonly yes with appendfsync everysec')
    }
  } catch (error) {
    // The cause only: an ioredis error carries its command, and HELLO's carries the password.
    log?.debug({ cause: errorCause(error as Error) }, 'wecom: could not read the Redis persistence settings')
  }
}

/** A CONFIG GET reply: [name, value] in RESP2, { name: value } in RESP3. */
function configValue (reply: unknown, name: string): string | undefined {
  if (Array.isArray(reply)) {
    const at = reply.indexOf(name)
    return at === -1 ? undefined : reply[at + 1] as string
  }
  return (reply as Record<string, string> | null)?.[name]
}
