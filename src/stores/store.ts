import type { Surface } from '../member.js'
import type { WecomMember } from '../options.js'
import type { SharedTokenStore } from '../wecom/credentials.js'

/** A login session as stored: everything needed to refresh it, nothing a client may see. */
export interface SessionRecord {
  sid: string
  corpid: string
  userid: string
  /** What user/get said at the last check, returned on refresh. */
  member: WecomMember
  /** How many times the session rotated: the generation its current refresh token carries. */
  generation: number
  /** sha256 of the current refresh token: the token itself is never stored. */
  refreshHash: string
  /**
   * What the last rotation answered, for a retry of it within the reuse grace: its access token,
   * sealed by the vault, and the epoch ms until which it may be handed out again. The refresh
   * token of that answer is derived again from the presented one, never stored.
   */
  replay?: { accessToken: string, until: number }
  /** Epoch ms of the last user/get for this member. */
  checkedAt: number
  /** Epoch ms after which the refresh token is dead. */
  expiresAt: number
  /**
   * Epoch ms the session started (absent in sessions stored before it was kept: read as 0). An
   * off-boarding ends the sessions started at or before its not-before, and no later one.
   */
  startedAt?: number
  /** Where the session was made; `miniprogram` when absent (a session stored before surfaces). */
  surface?: Surface
  /** The SuiteId, for a session of a corp that installed one of `suites`: its refresh asks that the install still holds. */
  suiteId?: string
  /** Epoch ms of the last refresh (rotation); absent until the first. */
  refreshedAt?: number
  /** The User-Agent of the login's request, at most 256 characters: for the member's session list. */
  userAgent?: string
  /** The member's private fields of a `snsapi_privateinfo` web login, as JSON sealed by the vault. */
  profile?: string
}

/** Live sessions, oldest first: what sessionsOf answers. */
export function byStart (sessions: ReadonlyArray<SessionRecord | null>): SessionRecord[] {
  return sessions.filter((session): session is SessionRecord => session !== null)
    .sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0))
}

/** A revoked session: its access tokens are refused until they could not be valid anyway. */
export interface SessionRevocation { sid: string, until: number }

/**
 * An off-boarded member: every access token of theirs issued at or before `notBefore` (epoch ms) is
 * refused, until `until`, when each of them has expired anyway. With `userid` WHOLE_CORP, every
 * member of the corp: a corp that uninstalled a suite (cancel_auth).
 */
export interface MemberRevocation { corpid: string, userid: string, notBefore: number, until: number }

export type Revocation = SessionRevocation | MemberRevocation

/**
 * A session to revoke: its record, or its sid, corpid and userid, when the caller holds them (the
 * store then finds the member's index without reading the session again); its sid alone
 * otherwise, and the store reads the session to find its member.
 */
export type RevokedSession = string | Pick<SessionRecord, 'sid' | 'corpid' | 'userid'>

export function sidOf (session: RevokedSession): string {
  return typeof session === 'string' ? session : session.sid
}

/** Requests counted per key in fixed windows, shared by every instance: the routes' rate limits. */
export interface RateCounter {
  /**
   * Counts `by` requests (one unless told; several for a budget leased in batches) under `key`,
   * in a window of `window` ms from the first count. `current`: the count so far in the window,
   * `by` included; `ttl`: ms left of the window.
   */
  incr (key: string, window: number, by?: number): Promise<{ current: number, ttl: number }>
}

/** A suite's suite_ticket and the `TimeStamp` (epoch seconds) of the push that brought it. */
export interface SuiteTicket { ticket: string, timestamp: number }

/**
 * Each suite's newest suite_ticket, shared by every instance (doc path/90628: pushed every 10
 * minutes, valid 30). Methods reject with StoreDownError when the backend is down.
 */
export interface SuiteTicketStore {
  /**
   * Keeps `ticket` as the suite's for `ttl` ms, unless the one kept was pushed later: pushes
   * arrive late, twice or out of order. True when `ticket` is now the suite's.
   */
  save (suiteId: string, ticket: SuiteTicket, ttl: number): Promise<boolean>
  get (suiteId: string): Promise<SuiteTicket | null>
}

/**
 * A corp that installed a suite (create_auth, doc path/90603), as kept: its ids exactly as WeCom
 * wrote them (an encrypted corpid is case-sensitive), and its permanent code sealed, never in clear.
 */
export interface CorpAuthorization {
  suiteId: string
  corpId: string
  corpName: string
  /** The AgentIDs of the suite's apps in the corp. */
  agentIds: number[]
  /** The permanent code, sealed with `sealKeys` (AES-256-GCM): only the suite's token fetch opens it. */
  sealedCode: string
  /** Epoch ms of the install: the corp's sessions started before it are never refreshed. */
  authorizedAt: number
  /** WeCom's TimeStamp (epoch seconds) of the create_auth push: a cancel_auth dated before it is of an earlier install. */
  installPushedAt?: number
}

/**
 * The corps that installed each suite, shared by every instance. Methods reject with
 * StoreDownError when the backend is down.
 */
export interface CorpAuthorizationStore {
  /** Keeps the authorization, replacing the corp's former one for the suite (change_auth, a new code). */
  save (authorization: CorpAuthorization): Promise<void>
  get (suiteId: string, corpId: string): Promise<CorpAuthorization | null>
  /** Erases the corp's authorization of the suite, if it has one. */
  remove (suiteId: string, corpId: string): Promise<void>
  /** Every corp that installed the suite, in no set order. */
  list (suiteId: string): Promise<CorpAuthorization[]>
}

/** What claimDelivery found for a callback delivery. */
export type DeliveryClaim =
  /** This caller acts on the delivery now, and then settles it with this id. */
  | { state: 'new', id: string }
  /** An instance acted on it already, within the memory's ttl: answer success, do nothing. */
  | { state: 'done' }
  /** Another caller holds a live claim on it now: answer non-success, WeCom resends. */
  | { state: 'busy' }

/**
 * Where sessions and revocations live. The memory store serves one process; the Redis store
 * makes many instances act as one. Methods reject with StoreDownError when the backend is down.
 */
export interface SessionStore {
  /** The shared WeCom token store, when tokens are shared between processes. */
  readonly tokens?: SharedTokenStore
  /** The shared request counter, when limits are shared between processes. */
  readonly rateCounter?: RateCounter
  readonly suiteTickets: SuiteTicketStore
  readonly corpAuthorizations: CorpAuthorizationStore
  save (session: SessionRecord): Promise<void>
  get (sid: string): Promise<SessionRecord | null>
  /** The member's live sessions, whatever surface made them, oldest first (by `startedAt`). */
  sessionsOf (corpid: string, userid: string): Promise<SessionRecord[]>
  /**
   * Replaces the session only if its refresh hash is still `expectedHash`: of two refreshes racing
   * with one token, exactly one wins.
   */
  rotate (session: SessionRecord, expectedHash: string): Promise<boolean>
  /** Deletes sessions and records them as revoked until `until` (epoch ms), telling every instance. */
  revoke (sessions: readonly RevokedSession[], until: number): Promise<void>
  /**
   * Off-boarding in one step: deletes every session of the member started at or before
   * `notBefore`, and their session_key if it came from a jscode2session answer at or before it,
   * and records the member's not-before, telling every instance (also those that connect later).
   * A not-before in the past (a WeCom event's time) leaves the sessions made since alone.
   * Answers the sids it ended, which the caller revokes too: a refresh that rotated one of them
   * while this ran holds an access token issued after the not-before.
   */
  revokeMember (revocation: MemberRevocation): Promise<string[]>
  /**
   * Keeps a member's WeCom session_key, sealed by the vault, for `ttl` ms, unless the one kept came
   * from a later jscode2session answer: WeCom rotates the key at every login, and the client
   * encrypts with the newest, whichever login finished last. `answeredAt`: epoch ms of that answer.
   */
  saveSessionKey (corpid: string, userid: string, sealed: string, ttl: number, answeredAt: number): Promise<void>
  sessionKeyOf (corpid: string, userid: string): Promise<string | null>
  /**
   * Calls `listener` for every revocation, from this instance or another, and for those already
   * recorded when it subscribes or reconnects, so a restarted instance refuses them too.
   */
  onRevoke (listener: (revocations: readonly Revocation[]) => void): Promise<void>
  close (): Promise<void>
  /**
   * Claims a callback delivery for `lease` ms, across instances: the caller that gets 'new' acts on
   * the delivery and then settles it. A claim not settled within its lease lapses (an instance died
   * mid-work), and the next delivery claims it anew.
   */
  claimDelivery (key: string, lease: number): Promise<DeliveryClaim>
  /**
   * After acting on a claimed delivery: `done` remembers it as done for `ttl` ms (a resend then
   * gets 'done'); not done releases the claim, if it is still this `id`'s, so that WeCom's resend
   * or another instance acts on it.
   */
  settleDelivery (key: string, id: string, done: boolean, ttl: number): Promise<void>
  /**
   * Extends a claim still held by `id` to `lease` ms from now, while its work goes on: false when
   * it is no longer this claim's (it lapsed and another took it, or it was settled).
   */
  renewDelivery (key: string, id: string, lease: number): Promise<boolean>
}

/** The `userid` of a revocation that ends every member's access tokens of its corp: no member has it. */
export const WHOLE_CORP = ''

/** One key per member, the same in every part of the process. */
export function memberKey (corpid: string, userid: string): string {
  return `${corpid}\u0000${userid}`
}

/** The store's backend failed: the session operation answers 503 WECOM_STORE_UNAVAILABLE. */
export class StoreDownError extends Error {
  constructor (cause: unknown) {
    super('session store unavailable', { cause })
    this.name = 'StoreDownError'
  }
}
