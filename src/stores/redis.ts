import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { SharedStoreError, type CachedToken, type SharedTokenStore } from '../wecom/credentials.js'
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

/** One server (alone or under Sentinel) or a Cluster: the store speaks to both alike. */
export type RedisClient = Redis | Cluster

type Failure = new (cause: unknown) => Error

/** One command (or script) on a ready connection, within COMMAND_TIMEOUT, failing as `Failure`. */
async function bounded<T> (client: RedisClient, Failure: Failure, operation: (client: RedisClient) => Promise<T>): Promise<T> {
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

  async run (client: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return await client.eval(this.#lua, keys.length, ...keys, ...args)
    }
  }
}

// Every script touches keys of one hash slot only, all passed in KEYS, so that the store runs on a
// Redis Cluster as on one server: a session's key is tagged by its sid, a member's keys by the
// member, the revocation records share one tag. What spans two of them is done in steps, each
// ordered so that a step cut off (a crash, a failover) never lets a session outlive an
// off-boarding: see save, rotate and revokeMember.

/**
 * KEYS: member's session index. ARGV: sid, expiresAt, now. Indexes a session scored by its
 * expiry, so that ended sessions fall out by score in O(log n) rather than by a scan of every sid;
 * the index lives at least as long as its longest session.
 */
const INDEX = new Script(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
`)

/** KEYS: session. ARGV: json, ttl ms, expected refresh hash. 1 if replaced. */
const ROTATE = new Script(`
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).refreshHash ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// After an entry scored by `until` went into the record KEYS[1]: forgets entries whose access
// tokens have all expired (an entry lives through the millisecond `until` itself, as in
// sessions/revocations.ts), keeps the record as long as its newest entry, and tells every instance.
// ARGV[1..4]: until, now, channel, message.
const TRIM_AND_PUBLISH = `
local untilMs, now = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local ttl = untilMs - now + 1
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
`

/**
 * KEYS: revoked-sessions record. ARGV: until, now, channel, message, sids... Records the sessions
 * as revoked until `until`, never shortening an earlier entry.
 */
const RECORD_SESSIONS = new Script(`
for i = 5, #ARGV do
  local known = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not known or tonumber(known) < tonumber(ARGV[1]) then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
end
${TRIM_AND_PUBLISH}
`)

/** KEYS: not-before record. ARGV: until, now, channel, message, entry. One entry per revokeUser. */
const RECORD_MEMBER = new Script(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
${TRIM_AND_PUBLISH}
`)

/**
 * KEYS: member's session index, member's session_key. ARGV: not-before. Forgets the session_key
 * if it came from an answer at or before the not-before; answers the sids indexed.
 */
const DROP_MEMBER = new Script(`
local kept = redis.call('GET', KEYS[2])
if kept and (tonumber(string.match(kept, '^(%d+)%.')) or 0) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[2]) end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

/**
 * KEYS: session. ARGV: not-before. Ends the session if it started at or before the not-before
 * (a replayed event must not end a session made after it); 1 when it is gone.
 */
const END_IF_STARTED = new Script(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 1 end
if (cjson.decode(raw).startedAt or 0) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

/**
 * KEYS: revoked-sessions record, not-before record. ARGV: now. Through Lua, whose replies are
 * RESP2-shaped: two flat [entry, until, ...] lists whatever protocol the client speaks.
 */
const LIVE_REVOCATIONS = new Script(`
return {
  redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES')
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

/**
 * The store's keys under `prefix`. Tagged so that what one step touches shares a hash slot on a
 * Cluster: a session by its sid, a member's index and session_key by the member, the two
 * revocation records together.
 */
export const redisKeys = {
  session: (prefix: string, sid: string) => `${prefix}session:{${sid}}`,
  memberIndex: (prefix: string, corpid: string, userid: string) => `${prefix}member:${memberTag(corpid, userid)}`,
  sessionKey: (prefix: string, corpid: string, userid: string) => `${prefix}session-key:${memberTag(corpid, userid)}`,
  revokedSessions: (prefix: string) => `${prefix}{revocations}:sessions`,
  notBefore: (prefix: string) => `${prefix}{revocations}:members`
}

/**
 * A member's hash tag: a digest, so that a userid holding braces cannot move the tag, and short,
 * since it is in every member key.
 */
function memberTag (corpid: string, userid: string): string {
  return `{${createHash('sha256').update(corpid).update('\u0000').update(userid).digest('base64url').slice(0, 16)}}`
}

export interface RedisStoreOptions {
  /** Never closed by the store: whoever opened it closes it. */
  client: RedisClient
  keyPrefix: string
  log?: FastifyBaseLogger
  now?: () => number
}

/**
 * Sessions, revocations and the WeCom access token in Redis (one server, Sentinel or a Cluster),
 * so that any number of instances act as one. Every command fails fast while Redis is
 * unreachable; ioredis reconnects by itself, and the revocation subscription is renewed (with a
 * fresh read of the recorded revocations) each time.
 */
export class RedisSessionStore implements SessionStore {
  readonly tokens: SharedTokenStore
  readonly rateCounter: RateCounter
  readonly #client: RedisClient
  readonly #prefix: string
  readonly #revokedKey: string
  readonly #notBeforeKey: string
  /**
   * Channels are not keys: ioredis's keyPrefix does not reach them, so it is put in front here,
   * and two deployments that differ only by it do not hear each other.
   */
  readonly #channel: string
  readonly #log: FastifyBaseLogger | undefined
  readonly #now: () => number
  readonly #listeners: Array<(revocations: readonly Revocation[]) => void> = []
  #subscriber: RedisClient | undefined
  #subscribed = false
  #lost = false
  #syncPending = false
  #syncing = false
  #firstSync: (() => void) | undefined
  #closed = false

  constructor (options: RedisStoreOptions) {
    this.#client = options.client
    this.#prefix = options.keyPrefix
    // Fixed for the store's life: not rebuilt on every revocation and every message heard.
    this.#revokedKey = redisKeys.revokedSessions(this.#prefix)
    this.#notBeforeKey = redisKeys.notBefore(this.#prefix)
    this.#channel = `${keyPrefixOf(this.#client)}${this.#prefix}revocations`
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

  /**
   * Index, then session, sent together: on one server they run in that order, so a save cut off
   * between the two leaves an indexed sid with no session (harmless), never a session that
   * revokeUser cannot find.
   */
  async save (session: SessionRecord): Promise<void> {
    const ttl = Math.max(1, session.expiresAt - this.#now())
    await Promise.all([
      this.#index(session),
      this.#run((client) => client.set(redisKeys.session(this.#prefix, session.sid), JSON.stringify(session), 'PX', ttl))
    ])
  }

  async get (sid: string): Promise<SessionRecord | null> {
    const raw = await this.#run((client) => client.get(redisKeys.session(this.#prefix, sid)))
    if (raw === null) return null
    const session = parseJson<SessionRecord>(raw)
    return session.expiresAt > this.#now() ? session : null
  }

  /** The index's expiry is raised before the session changes, for the same reason as in save. */
  async rotate (session: SessionRecord, expectedHash: string): Promise<boolean> {
    const ttl = Math.max(1, session.expiresAt - this.#now())
    const [, replaced] = await Promise.all([
      this.#index(session),
      this.#run((client) => ROTATE.run(client, [redisKeys.session(this.#prefix, session.sid)], [JSON.stringify(session), ttl, expectedHash]))
    ])
    return replaced === 1
  }

  /** Recorded and told first, so that every instance refuses them even if the deletes fail. */
  async revoke (sids: readonly string[], until: number): Promise<void> {
    if (sids.length === 0) return
    const revocations = sids.map((sid) => ({ sid, until }))
    // This instance refuses them at once, even if Redis then fails to record them for the others.
    this.#deliver(revocations)
    await this.#run((client) => RECORD_SESSIONS.run(client, [this.#revokedKey], [
      until, this.#now(), this.#channel, JSON.stringify(revocations), ...sids
    ]))
    await Promise.all(sids.map((sid) => this.#deleteSession(sid)))
  }

  /**
   * Off-boarding in steps, each on one slot: the not-before is recorded and told (from then on
   * every access token of the member issued before it is refused everywhere), the session_key of
   * an answer before it goes, then each session the index names that started before it, and its
   * sid from the index. A rotation racing with it either finds its session gone or is ended after.
   */
  async revokeMember (revocation: MemberRevocation): Promise<string[]> {
    const { corpid, userid, notBefore, until } = revocation
    this.#deliver([revocation])
    await this.#run((client) => RECORD_MEMBER.run(client, [this.#notBeforeKey], [
      until, this.#now(), this.#channel, JSON.stringify([revocation]), JSON.stringify([corpid, userid, notBefore])
    ]))
    const index = redisKeys.memberIndex(this.#prefix, corpid, userid)
    const sids = await this.#run((client) => DROP_MEMBER.run(client, [index, redisKeys.sessionKey(this.#prefix, corpid, userid)], [notBefore])) as string[]
    const ended = await Promise.all(sids.map(async (sid) => {
      if (await this.#run((client) => END_IF_STARTED.run(client, [redisKeys.session(this.#prefix, sid)], [notBefore])) !== 1) return undefined
      await this.#run((client) => client.zrem(index, sid))
      return sid
    }))
    return ended.filter((sid) => sid !== undefined)
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
      // The cause only: an ioredis error carries its command, and HELLO's carries the password.
      this.#log?.debug({ cause: errorCause(error as Error) }, 'wecom: could not read the Redis persistence settings')
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
    const inTime = await Promise.race([synced.then(() => true), sleep(FIRST_SYNC_WAIT, false, { ref: false })])
    if (!inTime && !this.#lost) {
      this.#log?.warn(`wecom: Redis at ${describeRedis(this.#client)} did not answer within ${FIRST_SYNC_WAIT} ms of boot (status ${this.#client.status}): running degraded until it does`)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#subscriber?.disconnect()
  }

  async firstDelivery (key: string, ttl: number): Promise<boolean> {
    const set = await this.#run((client) => client.set(`${this.#prefix}delivery:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttl)), 'NX'))
    return set === 'OK'
  }

  #sessionKeyKey (corpid: string, userid: string): string {
    return redisKeys.sessionKey(this.#prefix, corpid, userid)
  }

  async #index (session: SessionRecord): Promise<void> {
    await this.#run((client) => INDEX.run(client, [redisKeys.memberIndex(this.#prefix, session.corpid, session.userid)], [
      session.sid, session.expiresAt, this.#now()
    ]))
  }

  /** The session goes, and its sid from its member's index (each on its own slot). */
  async #deleteSession (sid: string): Promise<void> {
    const key = redisKeys.session(this.#prefix, sid)
    const raw = await this.#run((client) => client.get(key))
    if (raw === null) return
    const { corpid, userid } = parseJson<SessionRecord>(raw)
    await Promise.all([
      this.#run((client) => client.zrem(redisKeys.memberIndex(this.#prefix, corpid, userid), sid)),
      this.#run((client) => client.del(key))
    ])
  }

  #run<T> (operation: (client: RedisClient) => Promise<T>): Promise<T> {
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
    const subscriber = duplicateForSubscribing(this.#client)
    this.#subscriber = subscriber
    // This connection is the store's own, so its errors tell an outage, once, with its cause and
    // the address (never a password), whether the plugin opened the Redis connection or was given it.
    subscriber.on('error', (error: Error) => {
      if (this.#closed || this.#lost) return
      this.#lost = true
      this.#log?.warn({ cause: errorCause(error) }, `wecom: Redis at ${describeRedis(this.#client)} cannot be reached (${errorCause(error)}): sessions answer 503, logins come without refresh tokens, and revocations from other instances wait, until it is back; reconnecting`)
    })
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) this.#deliver(parseRevocations(message))
    })
    subscriber.on('ready', () => {
      bounded(subscriber, StoreDownError, (connection) => connection.subscribe(this.#channel)).then(() => {
        this.#subscribed = true
        if (this.#lost) this.#log?.info(`wecom: Redis at ${describeRedis(this.#client)} is back`)
        this.#lost = false
        this.#resync()
      }, () => {
        // Not subscribed on a connection that looks fine: start it over rather than stay deaf.
        if (!this.#closed) reconnect(subscriber)
      })
    })
    subscriber.on('close', () => { this.#subscribed = false })
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
  readonly #client: RedisClient
  readonly #tokenPrefix: string
  readonly #lockPrefix: string
  readonly #now: () => number

  constructor (client: RedisClient, keyPrefix: string, now: () => number) {
    this.#client = client
    this.#tokenPrefix = `${keyPrefix}token:`
    this.#lockPrefix = `${keyPrefix}token-lock:`
    this.#now = now
  }

  async read (key: string): Promise<CachedToken | null> {
    const raw = await this.#run((client) => client.get(this.#tokenPrefix + key))
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

  #run<T> (operation: (client: RedisClient) => Promise<T>): Promise<T> {
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

/** ioredis's own keyPrefix, which it puts in front of every key, but not of channel names. */
function keyPrefixOf (client: RedisClient): string {
  return (client.options as { keyPrefix?: string }).keyPrefix ?? ''
}

function isCluster (client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/** A connection like `client` (same nodes, auth, TLS, Sentinel set) for the revocation channel. */
function duplicateForSubscribing (client: RedisClient): RedisClient {
  return isCluster(client)
    ? client.duplicate(undefined, { clusterRetryStrategy: reconnectDelay, lazyConnect: false })
    : client.duplicate({ autoResubscribe: false, lazyConnect: false, retryStrategy: reconnectDelay })
}

function reconnect (client: RedisClient): void {
  if (isCluster(client)) {
    // A Cluster has no disconnect(reconnect): dropping its connections makes it refresh and reconnect.
    for (const node of client.nodes()) node.disconnect(true)
  } else {
    client.disconnect(true)
  }
}

/** Parses what the store wrote; anything else under its key (another program's value) is the store failing. */
function parseJson<T> (raw: string, Failure: Failure = StoreDownError): T {
  try {
    return JSON.parse(raw) as T
  } catch (error) {
    throw new Failure(error)
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
function errorCause (error: Error): string {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : /^(WRONGPASS|NOAUTH|NOPERM|LOADING|READONLY|MASTERDOWN)\b/.exec(error.message)?.[1] ?? error.name
}

function noop (): void {}
