import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { StoreDownError, type MemberRevocation, type Revocation, type SessionRevocation } from '../store.js'
import {
  bounded, COMMAND_TIMEOUT, describeRedis, duplicateForSubscribing, errorCause, keyPrefixOf, reconnect, type RedisClient, type Run
} from './connection.js'
import { redisKeys } from './keys.js'
import { LIVE_REVOCATIONS, RECORD_MEMBER, RECORD_SESSIONS } from './scripts.js'

/** While the subscription is live but the command connection is not yet back. */
const RESYNC_RETRY = 250
/** How long onRevoke waits for the first delivery of recorded revocations before boot goes on. */
const FIRST_SYNC_WAIT = 2 * COMMAND_TIMEOUT

interface RevocationFeedOptions {
  client: RedisClient
  /** The session store's commands on `client`. */
  run: Run
  keyPrefix: string
  log: FastifyBaseLogger | undefined
  now: () => number
}

/**
 * The revocations every instance hears: recorded in Redis (for instances that connect later) and
 * published (for those connected now). The subscription is renewed on every reconnect, each time
 * followed by a fresh read of the recorded revocations, so that nothing published while away is
 * missed.
 */
export class RevocationFeed {
  readonly #client: RedisClient
  readonly #run: Run
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
  /** Subscribed on the live subscriber connection: a failed resync is then worth retrying. */
  #subscribed = false
  /** An outage was told: told once, and its end too. */
  #lost = false
  /** A resync was asked for since the running one read the record. */
  #syncPending = false
  #syncing = false
  /** Resolves onRevoke's wait for the first read of the record. */
  #firstSync: (() => void) | undefined
  #closed = false

  constructor (options: RevocationFeedOptions) {
    this.#client = options.client
    this.#run = options.run
    // Fixed for the feed's life: not rebuilt on every revocation and every message heard.
    this.#revokedKey = redisKeys.revokedSessions(options.keyPrefix)
    this.#notBeforeKey = redisKeys.notBefore(options.keyPrefix)
    this.#channel = `${keyPrefixOf(options.client)}${options.keyPrefix}revocations`
    this.#log = options.log
    this.#now = options.now
  }

  /**
   * Records the sessions as revoked until `until`, and tells every instance. This instance's
   * listeners hear it at once, even if Redis then fails to record it for the others.
   */
  async revokeSessions (sids: readonly string[], until: number): Promise<void> {
    const revocations: SessionRevocation[] = sids.map((sid) => ({ sid, until }))
    this.#deliver(revocations)
    await this.#run((client) => RECORD_SESSIONS.run(client, [this.#revokedKey], [
      until, this.#now(), this.#channel, JSON.stringify(revocations), ...sids
    ]))
  }

  /** Records the member's not-before and tells every instance, this one first, as revokeSessions. */
  async revokeMember (revocation: MemberRevocation): Promise<void> {
    const { corpid, userid, notBefore, until } = revocation
    this.#deliver([revocation])
    await this.#run((client) => RECORD_MEMBER.run(client, [this.#notBeforeKey], [
      until, this.#now(), this.#channel, JSON.stringify([revocation]), JSON.stringify([corpid, userid, notBefore])
    ]))
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

  close (): void {
    this.#closed = true
    this.#subscriber?.disconnect()
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
      this.#deliver(liveRevocations(...live))
      this.#firstSync?.()
      this.#firstSync = undefined
    }
  }
}

/** LIVE_REVOCATIONS's two flat [entry, until, ...] lists, as revocations. */
function liveRevocations (sessions: readonly string[], members: readonly string[]): Revocation[] {
  const revocations: Revocation[] = []
  for (let i = 0; i < sessions.length; i += 2) revocations.push({ sid: sessions[i], until: Number(sessions[i + 1]) })
  for (let i = 0; i < members.length; i += 2) {
    const member = parseNotBefore(members[i], Number(members[i + 1]))
    if (member !== null) revocations.push(member)
  }
  return revocations
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
