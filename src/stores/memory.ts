import { randomUUID } from 'node:crypto'
import { byStart, memberKey, sidOf, type DeliveryClaim, type MemberRevocation, type Revocation, type RevokedSession, type SessionRecord, type SessionStore, type SuiteTicketStore, type CorpAuthorizationStore } from './store.js'
import { MemorySuiteTickets } from './suite-tickets.js'
import { MemoryCorpAuthorizations } from './corp-authorizations.js'

/**
 * The keys of `map`, oldest first, for deleting each as it comes: one iterator kept across calls.
 * `map.keys().next()` would start from the front every time, and V8 keeps deleted entries in place
 * until it rebuilds the table, so each call walked all those deleted before it (50 µs an eviction
 * measured in a full map of 100,000). Kept, the iterator walks past each once. The price: V8 keeps
 * a table rebuilt since the iterator's last step alive for it, until its next step (the next eviction).
 */
function oldestFirst<K> (map: Map<K, unknown>): () => K {
  let keys: Iterator<K> | undefined
  return () => {
    let next = keys?.next()
    // A finished iterator stays finished, whatever is added to the map after.
    if (next === undefined || next.done === true) next = (keys = map.keys()).next()
    return next.value as K
  }
}

/**
 * The default, in-process store. Bounded: past `maxSessions` the least recently refreshed session
 * is dropped (its member logs in again), so a million logins cannot grow the heap without limit.
 */
export class MemorySessionStore implements SessionStore {
  readonly suiteTickets: SuiteTicketStore
  readonly corpAuthorizations: CorpAuthorizationStore = new MemoryCorpAuthorizations()
  readonly #sessions = new Map<string, SessionRecord>()
  /** A member's one session id, or a Set of them: most members have one, and a Set costs ~100 bytes. */
  readonly #byMember = new Map<string, string | Set<string>>()
  readonly #sessionKeys = new Map<string, { sealed: string, expiresAt: number, answeredAt: number }>()
  readonly #oldestSession = oldestFirst(this.#sessions)
  readonly #oldestSessionKey = oldestFirst(this.#sessionKeys)
  readonly #listeners: Array<(revocations: readonly Revocation[]) => void> = []
  /**
   * Callback deliveries claimed (with the claim's id) or done (without), and the epoch ms until
   * which the claim or the memory lasts.
   */
  readonly #deliveries = new Map<string, { id?: string, until: number }>()
  readonly #oldestDelivery = oldestFirst(this.#deliveries)
  readonly #maxSessions: number
  readonly #now: () => number

  constructor (options: { maxSessions: number, now?: () => number }) {
    this.suiteTickets = new MemorySuiteTickets(options.now)
    this.#maxSessions = options.maxSessions
    this.#now = options.now ?? Date.now
  }

  async save (session: SessionRecord): Promise<void> {
    this.#put(session)
    while (this.#sessions.size > this.#maxSessions) this.#remove(this.#oldestSession())
  }

  async get (sid: string): Promise<SessionRecord | null> {
    const session = this.#sessions.get(sid)
    if (session === undefined) return null
    if (session.expiresAt <= this.#now()) {
      this.#remove(sid)
      return null
    }
    return session
  }

  async sessionsOf (corpid: string, userid: string): Promise<SessionRecord[]> {
    const sids = this.#byMember.get(memberKey(corpid, userid))
    const live = await Promise.all((typeof sids === 'string' ? [sids] : [...sids ?? []]).map((sid) => this.get(sid)))
    return byStart(live)
  }

  async rotate (session: SessionRecord, expectedHash: string): Promise<boolean> {
    const current = await this.get(session.sid)
    if (current?.refreshHash !== expectedHash) return false
    this.#put(session)
    return true
  }

  async revoke (sessions: readonly RevokedSession[], until: number): Promise<void> {
    const sids = sessions.map(sidOf)
    for (const sid of sids) this.#remove(sid)
    this.#deliver(sids.map((sid) => ({ sid, until })))
  }

  async revokeMember (revocation: MemberRevocation): Promise<string[]> {
    const key = memberKey(revocation.corpid, revocation.userid)
    const sids = this.#byMember.get(key)
    const ended = (typeof sids === 'string' ? [sids] : [...sids ?? []])
      .filter((sid) => (this.#sessions.get(sid)?.startedAt ?? 0) <= revocation.notBefore)
    for (const sid of ended) this.#remove(sid)
    if ((this.#sessionKeys.get(key)?.answeredAt ?? 0) <= revocation.notBefore) this.#sessionKeys.delete(key)
    this.#deliver([revocation])
    return ended
  }

  async saveSessionKey (corpid: string, userid: string, sealed: string, ttl: number, answeredAt: number): Promise<void> {
    const key = memberKey(corpid, userid)
    const kept = this.#sessionKeys.get(key)
    if (kept !== undefined && kept.expiresAt > this.#now() && kept.answeredAt > answeredAt) return
    this.#sessionKeys.delete(key)
    this.#sessionKeys.set(key, { sealed, expiresAt: this.#now() + ttl, answeredAt })
    if (this.#sessionKeys.size > this.#maxSessions) this.#sessionKeys.delete(this.#oldestSessionKey())
  }

  async sessionKeyOf (corpid: string, userid: string): Promise<string | null> {
    const entry = this.#sessionKeys.get(memberKey(corpid, userid))
    return entry !== undefined && entry.expiresAt > this.#now() ? entry.sealed : null
  }

  async onRevoke (listener: (revocations: readonly Revocation[]) => void): Promise<void> {
    this.#listeners.push(listener)
  }

  async close (): Promise<void> {
    this.#sessions.clear()
    this.#byMember.clear()
    this.#sessionKeys.clear()
    this.#deliveries.clear()
  }

  async claimDelivery (key: string, lease: number): Promise<DeliveryClaim> {
    const held = this.#deliveries.get(key)
    if (held !== undefined && held.until > this.#now()) return held.id === undefined ? { state: 'done' } : { state: 'busy' }
    const id = randomUUID()
    this.#remember(key, { id, until: this.#now() + lease })
    return { state: 'new', id }
  }

  async settleDelivery (key: string, id: string, done: boolean, ttl: number): Promise<void> {
    if (done) this.#remember(key, { until: this.#now() + ttl })
    else if (this.#deliveries.get(key)?.id === id) this.#deliveries.delete(key)
  }

  async renewDelivery (key: string, id: string, lease: number): Promise<boolean> {
    const held = this.#deliveries.get(key)
    if (held?.id !== id || held.until <= this.#now()) return false
    held.until = this.#now() + lease
    return true
  }

  #remember (key: string, entry: { id?: string, until: number }): void {
    this.#deliveries.delete(key)
    this.#deliveries.set(key, entry)
    // Bounded like the sessions: the oldest sighting goes first.
    if (this.#deliveries.size > this.#maxSessions) this.#deliveries.delete(this.#oldestDelivery())
  }

  #deliver (revocations: readonly Revocation[]): void {
    for (const listener of this.#listeners) listener(revocations)
  }

  #put (session: SessionRecord): void {
    // Re-inserting moves the session to the back of the eviction order.
    this.#sessions.delete(session.sid)
    this.#sessions.set(session.sid, session)
    const key = memberKey(session.corpid, session.userid)
    const sids = this.#byMember.get(key)
    if (sids === undefined) this.#byMember.set(key, session.sid)
    else if (typeof sids !== 'string') sids.add(session.sid)
    else if (sids !== session.sid) this.#byMember.set(key, new Set([sids, session.sid]))
  }

  #remove (sid: string): void {
    const session = this.#sessions.get(sid)
    if (session === undefined) return
    this.#sessions.delete(sid)
    const key = memberKey(session.corpid, session.userid)
    const sids = this.#byMember.get(key)
    if (typeof sids === 'string') {
      this.#byMember.delete(key)
    } else if (sids !== undefined) {
      sids.delete(sid)
      if (sids.size === 1) this.#byMember.set(key, sids.values().next().value!)
    }
  }
}
