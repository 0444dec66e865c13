import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { SharedStoreError, type CachedToken, type SharedTokenStore } from '../../wecom/credentials.js'
import { commands, noop, parseJson, type RedisClient, type Run } from './connection.js'
import { redisKeys } from './keys.js'
import { DELETE_TOKEN_IF, RELEASE } from './scripts.js'

/** A lock holder that crashed blocks the others this long at most. */
const LOCK_TTL = 10_000
/** Longer than LOCK_TTL, so that a waiter outlives a crashed holder's lock. */
const LOCK_WAIT = 15_000

/** The WeCom access token shared by every instance, and the lock under which one of them renews it. */
export class RedisTokenStore implements SharedTokenStore {
  readonly #run: Run
  readonly #prefix: string
  readonly #now: () => number

  constructor (client: RedisClient, keyPrefix: string, now: () => number) {
    this.#run = commands(client, SharedStoreError)
    this.#prefix = keyPrefix
    this.#now = now
  }

  async read (key: string): Promise<CachedToken | null> {
    const raw = await this.#run((client) => client.get(redisKeys.token(this.#prefix, key)))
    if (raw === null) return null
    const token = parseJson<Partial<CachedToken>>(raw, SharedStoreError)
    return typeof token.value === 'string' && typeof token.expiresAt === 'number' && typeof token.fetchedAt === 'number'
      ? { value: token.value, expiresAt: token.expiresAt, fetchedAt: token.fetchedAt }
      : null
  }

  async write (key: string, token: CachedToken): Promise<void> {
    // Gone from Redis when the cache would stop using it anyway (its last tenth, at most a minute).
    const life = token.expiresAt - this.#now()
    const ttl = Math.floor(life - Math.min(60_000, life / 10))
    if (ttl < 1) return
    const value = JSON.stringify({ value: token.value, expiresAt: token.expiresAt, fetchedAt: token.fetchedAt })
    await this.#run((client) => client.set(redisKeys.token(this.#prefix, key), value, 'PX', ttl))
  }

  async compareAndDelete (key: string, value: string): Promise<void> {
    await this.#run((client) => DELETE_TOKEN_IF.run(client, [redisKeys.token(this.#prefix, key)], [value]))
  }

  async withLock<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const lock = redisKeys.tokenLock(this.#prefix, key)
    const owner = randomBytes(16).toString('hex')
    const deadline = Date.now() + LOCK_WAIT
    while (await this.#run((client) => client.set(lock, owner, 'PX', LOCK_TTL, 'NX')) !== 'OK') {
      if (Date.now() >= deadline) throw new SharedStoreError(new Error(`token lock not acquired within ${LOCK_WAIT} ms`))
      // Jittered, so that waiters do not retry in lockstep.
      await sleep(20 + Math.floor(Math.random() * 30))
    }
    try {
      return await fn()
    } finally {
      // A lock left behind (Redis gone meanwhile) expires after LOCK_TTL: no reason to fail `fn`'s result.
      await this.#run((client) => RELEASE.run(client, [lock], [owner])).catch(noop)
    }
  }
}
