import type { FastifyBaseLogger } from 'fastify'
import type { SharedTokenStore } from '../../wecom/credentials.js'
import {
  byStart, sidOf, StoreDownError, type DeliveryClaim, type MemberRevocation, type RateCounter, type Revocation, type RevokedSession, type SessionRecord, type SessionStore, type SuiteTicketStore, type CorpAuthorizationStore
} from '../store.js'
import { commands, parseJson, px, type RedisClient, type Run } from './connection.js'
import { RedisDeliveries } from './deliveries.js'
import { redisKeys } from './keys.js'
import { RedisRateCounter } from './rate-counter.js'
import { RevocationFeed } from './revocation-feed.js'
import { DROP_MEMBER, END_IF_STARTED, INDEX, ROTATE, SAVE_NEWEST } from './scripts.js'
import { RedisSuiteTickets } from './suite-tickets.js'
import { RedisCorpAuthorizations } from './corp-authorizations.js'
import { RedisTokenStore } from './tokens.js'

export interface RedisStoreOptions {
  /** Never closed by the store: whoever opened it closes it. */
  client: RedisClient
  keyPrefix: string
  log?: FastifyBaseLogger
  now?: () => number
}

// Every script touches keys of one hash slot only, all passed in KEYS, so that the store runs on a
// Redis Cluster as on one server (see keys.ts). What spans two slots is done in steps, each
// ordered so that a step cut off (a crash, a failover) never lets a session outlive an
// off-boarding: see save, rotate and revokeMember.

/**
 * Sessions, revocations and the WeCom access token in Redis (one server, Sentinel or a Cluster),
 * so that any number of instances act as one. Every command fails fast while Redis is
 * unreachable; ioredis reconnects by itself, and the revocation subscription is renewed (with a
 * fresh read of the recorded revocations) each time.
 */
export class RedisSessionStore implements SessionStore {
  readonly tokens: SharedTokenStore
  readonly rateCounter: RateCounter
  readonly suiteTickets: SuiteTicketStore
  readonly corpAuthorizations: CorpAuthorizationStore
  readonly #run: Run
  readonly #prefix: string
  readonly #feed: RevocationFeed
  readonly #deliveries: RedisDeliveries
  readonly #now: () => number

  constructor (options: RedisStoreOptions) {
    const { client, keyPrefix, log } = options
    this.#run = commands(client, StoreDownError)
    this.#prefix = keyPrefix
    this.#now = options.now ?? Date.now
    this.#feed = new RevocationFeed({ client, run: this.#run, keyPrefix, log, now: this.#now })
    this.tokens = new RedisTokenStore(client, keyPrefix, this.#now)
    this.rateCounter = new RedisRateCounter(this.#run, keyPrefix)
    this.#deliveries = new RedisDeliveries(this.#run, keyPrefix)
    this.suiteTickets = new RedisSuiteTickets(this.#run, keyPrefix)
    this.corpAuthorizations = new RedisCorpAuthorizations(this.#run, keyPrefix)
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

  /** Each on its own slot in a Cluster: one GET per sid of the member's index, together. */
  async sessionsOf (corpid: string, userid: string): Promise<SessionRecord[]> {
    const sids = await this.#run((client) => client.zrange(redisKeys.memberIndex(this.#prefix, corpid, userid), '0', '-1'))
    return byStart(await Promise.all(sids.map((sid) => this.get(sid))))
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

  /**
   * Recorded and told first, so that every instance refuses them even if the deletes fail. Then
   * each session goes, and its sid from its member's index (each on its own slot): one command
   * for all the sids of one member. Only a sid given alone costs a read, to find its member.
   */
  async revoke (sessions: readonly RevokedSession[], until: number): Promise<void> {
    if (sessions.length === 0) return
    await this.#feed.revokeSessions(sessions.map(sidOf), until)
    const found = await Promise.all(sessions.map((session) => typeof session === 'string' ? this.#memberOf(session) : session))
    const byIndex = new Map<string, string[]>()
    for (const session of found) {
      if (session === null) continue
      const index = redisKeys.memberIndex(this.#prefix, session.corpid, session.userid)
      const sids = byIndex.get(index)
      if (sids === undefined) byIndex.set(index, [session.sid])
      else sids.push(session.sid)
    }
    await Promise.all([
      ...[...byIndex].map(([index, sids]) => this.#run((client) => client.zrem(index, ...sids))),
      ...found.map((session) => session === null ? undefined : this.#run((client) => client.del(redisKeys.session(this.#prefix, session.sid))))
    ])
  }

  /**
   * Off-boarding in steps, each on one slot: the not-before is recorded and told (from then on
   * every access token of the member issued before it is refused everywhere), the session_key of
   * an answer before it goes, then each session the index names that started before it, and then
   * their sids from the index, in one command. A rotation racing with it either finds its session
   * gone or is ended after.
   */
  async revokeMember (revocation: MemberRevocation): Promise<string[]> {
    const { corpid, userid, notBefore } = revocation
    await this.#feed.revokeMember(revocation)
    const index = redisKeys.memberIndex(this.#prefix, corpid, userid)
    const sids = await this.#run((client) => DROP_MEMBER.run(client, [index, redisKeys.sessionKey(this.#prefix, corpid, userid)], [notBefore])) as string[]
    const ends = await Promise.all(sids.map((sid) => this.#run((client) => END_IF_STARTED.run(client, [redisKeys.session(this.#prefix, sid)], [notBefore]))))
    const ended = sids.filter((_sid, at) => ends[at] === 1)
    if (ended.length > 0) await this.#run((client) => client.zrem(index, ...ended))
    return ended
  }

  async saveSessionKey (corpid: string, userid: string, sealed: string, ttl: number, answeredAt: number): Promise<void> {
    await this.#run((client) => SAVE_NEWEST.run(client, [redisKeys.sessionKey(this.#prefix, corpid, userid)], [
      answeredAt, `${answeredAt}.${sealed}`, px(ttl)
    ]))
  }

  async sessionKeyOf (corpid: string, userid: string): Promise<string | null> {
    const kept = await this.#run((client) => client.get(redisKeys.sessionKey(this.#prefix, corpid, userid)))
    // The vault's base64 has no '.': what follows the answer time is the sealed key.
    return kept === null ? null : kept.slice(kept.indexOf('.') + 1)
  }

  async onRevoke (listener: (revocations: readonly Revocation[]) => void): Promise<void> {
    await this.#feed.onRevoke(listener)
  }

  async close (): Promise<void> {
    this.#feed.close()
  }

  async claimDelivery (key: string, lease: number): Promise<DeliveryClaim> {
    return await this.#deliveries.claim(key, lease)
  }

  async settleDelivery (key: string, id: string, done: boolean, ttl: number): Promise<void> {
    await this.#deliveries.settle(key, id, done, ttl)
  }

  async renewDelivery (key: string, id: string, lease: number): Promise<boolean> {
    return await this.#deliveries.renew(key, id, lease)
  }

  async #index (session: SessionRecord): Promise<void> {
    await this.#run((client) => INDEX.run(client, [redisKeys.memberIndex(this.#prefix, session.corpid, session.userid)], [
      session.sid, session.expiresAt, this.#now()
    ]))
  }

  /** A session's sid and member, read from the session; null when it is gone. */
  async #memberOf (sid: string): Promise<Pick<SessionRecord, 'sid' | 'corpid' | 'userid'> | null> {
    const raw = await this.#run((client) => client.get(redisKeys.session(this.#prefix, sid)))
    if (raw === null) return null
    const { corpid, userid } = parseJson<SessionRecord>(raw)
    return { sid, corpid, userid }
  }
}
