import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { SharedStoreError, type CachedToken, type SharedTokenStore } from '../wecom/token-cache.js'
import {
  StoreDownError, type MemberRevocation, type RateCounter, type Revocation, type SessionRecord, type SessionRevocation,
  type SessionStore
} from './store.js'

/**
 * How long one command may take before Redis counts as down. ioredis queues commands while it
 * reconnects; without this bound a login or a refresh would hang for the whole outage.
 */
const COMMAND_TIMEOUT = 1000
/** A lock holder that crashed blocks the others this long at most. */
const LOCK_TTL = 10_000
/** Longer than LOCK_TTL, so that a waiter outlives a crashed holder's lock. */
const LOCK_WAIT = 15_000
/** While the subscription is live but the command connection is not yet back. */
const RESYNC_RETRY = 250
/** How long onRevoke waits for the first delivery of recorded revocations before boot goes on. */
const FIRST_SYNC_WAIT = 2 * COMMAND_TIMEOUT

/**
 * Reconnects at most a second apart: ioredis's default backs off to five seconds, which would keep
 * sessions answering 503 (and revocations unheard) that long after Redis is back.
 */
export function reconnectDelay (attempt: number): number {
  return Math.min(attempt * 100, 1000)
}

type Failure = new (cause: unknown) => Error

/** One command (or script) on a ready connection, within COMMAND_TIMEOUT, failing as `Failure`. */
async function bounded<T> (client: Redis, Failure: Failure, operation: (client: Redis) => Promise<T>): Promise<T> {
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

/** A Lua script sent by its sha, and in full only when Redis does not know it (first use, restart). */
class Script {
  readonly #lua: string
  readonly #sha: string

  constructor (lua: string) {
    this.#lua = lua
    this.#sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (client: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return await client.eval(this.#lua, keys.length, ...keys, ...args)
    }
  }
}

// Lua shared by save and rotate: store the session and index it in the member's sorted set,
// scored by its expiry, so that ended sessions fall out of the index by score in O(log n) rather
// than by a scan of every sid; the set lives at least as long as its longest session.
// ARGV: json, ttl ms, sid, expiresAt, now.
const PUT_SESSION = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
`

/** KEYS: session, member set. ARGV: json, ttl ms, sid, expiresAt, now. */
const SAVE = new Script(PUT_SESSION)

/** KEYS: session, member set. ARGV: json, ttl ms, sid, expiresAt, now, expected refresh hash. 1 if replaced. */
const ROTATE = new Script(`
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).refreshHash ~= ARGV[6] then return 0 end
${PUT_SESSION}
return 1
`)

// Lua shared by REVOKE and REVOKE_MEMBER, after an entry scored by `until` went into the record
// KEYS[1]: forgets entries whose access tokens have all expired, keeps the record as long as its
// newest entry, and tells every instance. ARGV[3..6]: until, now, channel, message.
const RECORD_AND_PUBLISH = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if redis.call('PTTL', KEYS[1]) < untilMs - now then redis.call('PEXPIRE', KEYS[1], untilMs - now) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
`

/**
 * Keys built inside a script take their prefix from ARGV, which ioredis's own keyPrefix option
 * does not reach: the store passes it in front (see #physical).
 * KEYS: revoked set. ARGV: session prefix, member prefix, until, now, channel, message, sids...
 * Ends the sessions, records them as revoked until `until` (never shortening an earlier entry),
 * and tells every instance.
 */
const REVOKE = new Script(`
local sessionPrefix, memberPrefix, untilMs, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 7, #ARGV do
  local sid = ARGV[i]
  local raw = redis.call('GET', sessionPrefix .. sid)
  if raw then
    local session = cjson.decode(raw)
    redis.call('ZREM', memberPrefix .. session.corpid .. ':' .. session.userid, sid)
    redis.call('DEL', sessionPrefix .. sid)
  end
  local known = redis.call('ZSCORE', KEYS[1], sid)
  if not known or tonumber(known) < untilMs then redis.call('ZADD', KEYS[1], ARGV[3], sid) end
end
${RECORD_AND_PUBLISH}
`)

/**
 * KEYS: not-before record, member's session set, member's session_key.
 * ARGV: session prefix, entry, until, now, channel, message, not-before.
 * Off-boarding as one step: every session of the member started at or before the not-before and
 * their session_key of an answer at or before it go, and the member's not-before is recorded (an
 * entry per revokeUser, all forgotten once their access tokens expired) and told to every instance.
 */
const REVOKE_MEMBER = new Script(`
local sessionPrefix, untilMs, now, notBefore = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[7])
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local raw = redis.call('GET', sessionPrefix .. sid)
  if not raw or (cjson.decode(raw).startedAt or 0) <= notBefore then
    redis.call('DEL', sessionPrefix .. sid)
    redis.call('ZREM', KEYS[2], sid)
  end
end
local kept = redis.call('GET', KEYS[3])
if kept and (tonumber(string.match(kept, '^(%d+)%.')) or 0) <= notBefore then redis.call('DEL', KEYS[3]) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
${RECORD_AND_PUBLISH}
`)

/**
 * KEYS: revoked set, not-before record. ARGV: now. Through Lua, whose replies are RESP2-shaped:
 * two flat [entry, until, ...] lists whatever protocol the client speaks.
 */
const LIVE_REVOCATIONS = new Script(`
return {
  redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES')
}
`)

/**
 * KEYS: session_key. ARGV: answeredAt, `<answeredAt>.<sealed>`, ttl ms. Keeps the key of the
 * latest jscode2session answer: an older answer arriving last does not replace a newer one.
 */
const SAVE_SESSION_KEY = new Script(`
local kept = redis.call('GET', KEYS[1])
local keptAt = kept and tonumber(string.match(kept, '^(%d+)%.'))
if keptAt and keptAt > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

/** KEYS: token. ARGV: token value. Deletes the token only if it still is that value. */
const DELETE_TOKEN_IF = new Script(`
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).value == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** KEYS: lock. ARGV: owner. Releases the lock only if this owner still holds it. */
const UNLOCK = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** KEYS: counter. ARGV: window ms. Counts one request; the window starts with the first. */
const COUNT = new Script(`
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }
`)

export interface RedisStoreOptions {
  /** Never closed by the store: whoever opened it closes it. */
  client: Redis
  keyPrefix: string
  log?: FastifyBaseLogger
  now?: () => number
}

/**
 * Sessions, revocations and the WeCom access token in Redis, so that any number of instances act
 * as one. Every command fails fast while Redis is unreachable; ioredis reconnects by itself, and
 * the revocation subscription is renewed (with a fresh read of the recorded revocations) each time.
 */
export class RedisSessionStore implements SessionStore {
  readonly tokens: SharedTokenStore
  readonly rateCounter: RateCounter
  readonly #client: Redis
  readonly #prefix: string
  readonly #log: FastifyBaseLogger | undefined
  readonly #now: () => number
  readonly #listeners: Array<(revocations: readonly Revocation[]) => void> = []
  #subscriber: Redis | undefined
  #subscribed = false
  #lost = false
  #syncPending = false
  #syncing = false
  #firstSync: (() => void) | undefined
  #closed = false

  constructor (options: RedisStoreOptions) {
    this.#client = options.client
    this.#prefix = options.keyPrefix
    this.#log = options.log
    this.#now = options.now ?? Date.now
    this.tokens = new RedisTokenStore(options.client, options.keyPrefix, this.#now)
    this.rateCounter = {
      incr: async (key, window) => {
        const [current, ttl] = await this.#run((client) => COUNT.run(client, [`${this.#prefix}rate:${key}`], [window])) as [number, number]
        return { current, ttl }
      }
    }
  }

  async save (session: SessionRecord): Promise<void> {
    await this.#run((client) => SAVE.run(client, this.#sessionKeys(session), this.#sessionArgs(session)))
  }

  async get (sid: string): Promise<SessionRecord | null> {
    const raw = await this.#run((client) => client.get(this.#sessionPrefix + sid))
    if (raw === null) return null
    const session = JSON.parse(raw) as SessionRecord
    return session.expiresAt > this.#now() ? session : null
  }

  async rotate (session: SessionRecord, expectedHash: string): Promise<boolean> {
    const replaced = await this.#run((client) => ROTATE.run(client, this.#sessionKeys(session), [
      ...this.#sessionArgs(session), expectedHash
    ]))
    return replaced === 1
  }

  async revoke (sids: readonly string[], until: number): Promise<void> {
    if (sids.length === 0) return
    const revocations = sids.map((sid) => ({ sid, until }))
    // This instance refuses them at once, even if Redis then fails to record them for the others.
    this.#deliver(revocations)
    await this.#run((client) => REVOKE.run(client, [this.#revokedKey], [
      this.#physical(this.#sessionPrefix), this.#physical(this.#memberPrefix), until, this.#now(),
      this.#channel, JSON.stringify(revocations), ...sids
    ]))
  }

  async revokeMember (revocation: MemberRevocation): Promise<void> {
    const { corpid, userid, notBefore, until } = revocation
    this.#deliver([revocation])
    await this.#run((client) => REVOKE_MEMBER.run(client, [
      this.#notBeforeKey, this.#memberKey(corpid, userid), this.#sessionKeyKey(corpid, userid)
    ], [
      this.#physical(this.#sessionPrefix), JSON.stringify([corpid, userid, notBefore]), until, this.#now(),
      this.#channel, JSON.stringify([revocation]), notBefore
    ]))
  }

  async saveSessionKey (corpid: string, userid: string, sealed: string, ttl: number, answeredAt: number): Promise<void> {
    await this.#run((client) => SAVE_SESSION_KEY.run(client, [this.#sessionKeyKey(corpid, userid)], [
      answeredAt, `${answeredAt}.${sealed}`, Math.max(1, Math.ceil(ttl))
    ]))
  }

  async sessionKeyOf (corpid: string, userid: string): Promise<string | null> {
    const kept = await this.#run((client) => client.get(this.#sessionKeyKey(corpid, userid)))
    // The vault's base64 has no '.': what follows the answer time is the sealed key.
    return kept === null ? null : kept.slice(kept.indexOf('.') + 1)
  }

  /**
   * Warns once when this Redis keeps nothing on disk: a restart of it would forget every session
   * (members log in again) and every recorded revocation (a new instance would accept revoked
   * tokens). Managed Redis often refuses CONFIG: then nothing can be told, and only debug says so.
   */
  async warnIfVolatile (): Promise<void> {
    try {
      if (this.#client.status !== 'ready') {
        await Promise.race([once(this.#client, 'ready'), sleep(COMMAND_TIMEOUT, undefined, { ref: false })])
      }
      const [appendonly, save] = await Promise.all(['appendonly', 'save'].map((name) =>
        this.#run(async (client) => configValue(await client.config('GET', name), name))))
      if (appendonly === 'no' && save === '') {
        this.#log?.warn('wecom: Redis persists nothing (appendonly no, no save points): a Redis restart drops every session and every recorded revocation; use appendonly yes with appendfsync everysec')
      }
    } catch (error) {
      this.#log?.debug({ err: error }, 'wecom: could not read the Redis persistence settings')
    }
  }

  async onRevoke (listener: (revocations: readonly Revocation[]) => void): Promise<void> {
    this.#listeners.push(listener)
    if (this.#subscriber !== undefined) {
      this.#resync()
      return
    }
    const synced = new Promise<void>((resolve) => { this.#firstSync = resolve })
    this.#subscribe()
    // Boot waits for the recorded revocations, but not for a Redis that is down: they arrive on reconnect.
    await Promise.race([synced, sleep(FIRST_SYNC_WAIT, undefined, { ref: false })])
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#subscriber?.disconnect()
  }

  async firstDelivery (key: string, ttl: number): Promise<boolean> {
    const set = await this.#run((client) => client.set(`${this.#prefix}delivery:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttl)), 'NX'))
    return set === 'OK'
  }

  get #sessionPrefix (): string { return `${this.#prefix}session:` }
  get #memberPrefix (): string { return `${this.#prefix}member:` }
  get #revokedKey (): string { return `${this.#prefix}revoked` }
  get #notBeforeKey (): string { return `${this.#prefix}not-before` }
  get #channel (): string { return `${this.#prefix}revocations` }

  /** A key prefix as Redis sees it, for keys a script builds itself. */
  #physical (prefix: string): string {
    return (this.#client.options.keyPrefix ?? '') + prefix
  }

  // corpids never contain ':', so `corpid:userid` cannot be read two ways. REVOKE builds the
  // same key in Lua.
  #memberKey (corpid: string, userid: string): string {
    return `${this.#memberPrefix}${corpid}:${userid}`
  }

  #sessionKeyKey (corpid: string, userid: string): string {
    return `${this.#prefix}session-key:${corpid}:${userid}`
  }

  #sessionKeys (session: SessionRecord): string[] {
    return [this.#sessionPrefix + session.sid, this.#memberKey(session.corpid, session.userid)]
  }

  /** json, ttl ms, sid, expiresAt, now: the ARGV head of PUT_SESSION. */
  #sessionArgs (session: SessionRecord): string[] {
    const now = this.#now()
    const ttl = Math.max(1, session.expiresAt - now)
    return [JSON.stringify(session), String(ttl), session.sid, String(session.expiresAt), String(now)]
  }

  #run<T> (operation: (client: Redis) => Promise<T>): Promise<T> {
    return bounded(this.#client, StoreDownError, operation)
  }

  #deliver (revocations: readonly Revocation[]): void {
    if (revocations.length === 0) return
    for (const listener of this.#listeners) listener(revocations)
  }

  #subscribe (): void {
    // A connection of its own: under RESP2 a subscribed connection runs no other command.
    // Resubscribing is done here on every 'ready' rather than by ioredis, so that it is always
    // followed by a read of the recorded revocations: nothing published while away is missed.
    const subscriber = this.#client.duplicate({ autoResubscribe: false, lazyConnect: false, retryStrategy: reconnectDelay })
    this.#subscriber = subscriber
    // Connection errors are retried by ioredis and reported once per outage on 'close'.
    subscriber.on('error', noop)
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) this.#deliver(parseRevocations(message))
    })
    subscriber.on('ready', () => {
      bounded(subscriber, StoreDownError, (connection) => connection.subscribe(this.#channel)).then(() => {
        this.#subscribed = true
        if (this.#lost) this.#log?.info('wecom: revocation channel is back')
        this.#lost = false
        this.#resync()
      }, () => {
        // Not subscribed on a connection that looks fine: start it over rather than stay deaf.
        if (!this.#closed) subscriber.disconnect(true)
      })
    })
    subscriber.on('close', () => {
      if (this.#subscribed && !this.#closed) {
        this.#lost = true
        this.#log?.warn('wecom: revocation channel lost; revocations from other instances arrive once Redis is back')
      }
      this.#subscribed = false
    })
  }

  /** Delivers every recorded, still live revocation; runs again if asked while running. */
  #resync (): void {
    this.#syncPending = true
    if (this.#syncing) return
    this.#syncing = true
    this.#syncLoop().finally(() => { this.#syncing = false })
  }

  async #syncLoop (): Promise<void> {
    while (this.#syncPending && !this.#closed) {
      this.#syncPending = false
      let live: [string[], string[]]
      try {
        live = await this.#run((client) => LIVE_REVOCATIONS.run(client, [this.#revokedKey, this.#notBeforeKey], [this.#now()])) as [string[], string[]]
      } catch {
        // Worth retrying only while subscribed (the command connection lags behind); otherwise
        // the next 'ready' starts over.
        if (this.#subscribed) {
          this.#syncPending = true
          await sleep(RESYNC_RETRY, undefined, { ref: false })
        }
        continue
      }
      const [sessions, members] = live
      const revocations: Revocation[] = []
      for (let i = 0; i < sessions.length; i += 2) revocations.push({ sid: sessions[i], until: Number(sessions[i + 1]) })
      for (let i = 0; i < members.length; i += 2) {
        const member = parseNotBefore(members[i], Number(members[i + 1]))
        if (member !== null) revocations.push(member)
      }
      this.#deliver(revocations)
      this.#firstSync?.()
      this.#firstSync = undefined
    }
  }
}

/** The WeCom access token shared by every instance, and the lock under which one of them renews it. */
class RedisTokenStore implements SharedTokenStore {
  readonly #client: Redis
  readonly #tokenPrefix: string
  readonly #lockPrefix: string
  readonly #now: () => number

  constructor (client: Redis, keyPrefix: string, now: () => number) {
    this.#client = client
    this.#tokenPrefix = `${keyPrefix}token:`
    this.#lockPrefix = `${keyPrefix}token-lock:`
    this.#now = now
  }

  async read (key: string): Promise<CachedToken | null> {
    const raw = await this.#run((client) => client.get(this.#tokenPrefix + key))
    if (raw === null) return null
    const token = JSON.parse(raw) as Partial<CachedToken>
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
    await this.#run((client) => client.set(this.#tokenPrefix + key, value, 'PX', ttl))
  }

  async compareAndDelete (key: string, value: string): Promise<void> {
    await this.#run((client) => DELETE_TOKEN_IF.run(client, [this.#tokenPrefix + key], [value]))
  }

  async withLock<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const lock = this.#lockPrefix + key
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
      await this.#run((client) => UNLOCK.run(client, [lock], [owner])).catch(noop)
    }
  }

  #run<T> (operation: (client: Redis) => Promise<T>): Promise<T> {
    return bounded(this.#client, SharedStoreError, operation)
  }
}

/** A published message, defensively: another version of the plugin may share the channel. */
function parseRevocations (message: string): Revocation[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(message)
  } catch {
    return []
  }
  if (!Array.isArray(parsed)) return []
  return parsed.filter((entry): entry is Revocation => isSessionRevocation(entry) || isMemberRevocation(entry))
}

function isSessionRevocation (entry: Partial<SessionRevocation> | null): boolean {
  return typeof entry?.sid === 'string' && typeof entry.until === 'number'
}

function isMemberRevocation (entry: Partial<MemberRevocation> | null): boolean {
  return typeof entry?.corpid === 'string' && typeof entry.userid === 'string' &&
    typeof entry.notBefore === 'number' && typeof entry.until === 'number'
}

/** An entry of the not-before record, `[corpid, userid, notBefore]`, with its score. */
function parseNotBefore (entry: string, until: number): MemberRevocation | null {
  try {
    const [corpid, userid, notBefore] = JSON.parse(entry) as unknown[]
    const revocation = { corpid, userid, notBefore, until } as MemberRevocation
    return isMemberRevocation(revocation) ? revocation : null
  } catch {
    return null
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

function noop (): void {}
