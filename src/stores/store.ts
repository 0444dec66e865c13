import type { WecomMember } from '../options.js'
import type { SharedTokenStore } from '../wecom/token-cache.js'

/** A login session as stored: everything needed to refresh it, nothing a client may see. */
export interface SessionRecord {
  sid: string
  corpid: string
  userid: string
  /** What user/get said at the last check, returned on refresh. */
  member: WecomMember
  /** sha256 of the current refresh token: the token itself is never stored. */
  refreshHash: string
  /** Hashes of the refresh tokens this session rotated away from: presenting one is theft. */
  rotatedHashes: string[]
  /** Epoch ms of the last user/get for this member. */
  checkedAt: number
  /** Epoch ms after which the refresh token is dead. */
  expiresAt: number
}

/** A revoked session: its access tokens are refused until they could not be valid anyway. */
export interface Revocation { sid: string, until: number }

/** Requests counted per key in fixed windows, shared by every instance: the routes' rate limits. */
export interface RateCounter {
  /** Counts one request under `key`; `window` ms from the first. `ttl`: ms left of the window. */
  incr (key: string, window: number): Promise<{ current: number, ttl: number }>
}

/**
 * Where sessions and revocations live. The memory store serves one process; the Redis store
 * makes many instances act as one. Methods reject with StoreDownError when the backend is down.
 */
export interface SessionStore {
  /** The shared WeCom token store, when tokens are shared between processes. */
  readonly tokens?: SharedTokenStore
  /** The shared request counter, when limits are shared between processes. */
  readonly rateCounter?: RateCounter
  save (session: SessionRecord): Promise<void>
  get (sid: string): Promise<SessionRecord | null>
  /**
   * Replaces the session only if its refresh hash is still `expectedHash`: of two refreshes racing
   * with one token, exactly one wins.
   */
  rotate (session: SessionRecord, expectedHash: string): Promise<boolean>
  /** Deletes sessions and records them as revoked until `until`, telling every instance. */
  revoke (sids: readonly string[], until: number): Promise<void>
  /**
   * Keeps a member's latest WeCom session_key, sealed by the vault, for `ttl` ms. One per member:
   * WeCom rotates it at every login, and data the client encrypts uses the newest.
   */
  saveSessionKey (corpid: string, userid: string, sealed: string, ttl: number): Promise<void>
  sessionKeyOf (corpid: string, userid: string): Promise<string | null>
  /** The sids of a member's sessions. */
  sessionsOf (corpid: string, userid: string): Promise<string[]>
  /**
   * Calls `listener` for every revocation, from this instance or another, and for those already
   * recorded when it subscribes or reconnects, so a restarted instance refuses them too.
   */
  onRevoke (listener: (revocations: readonly Revocation[]) => void): Promise<void>
  close (): Promise<void>
}

/** The store's backend failed: the session operation answers 503 WECOM_STORE_UNAVAILABLE. */
export class StoreDownError extends Error {
  constructor (cause: unknown) {
    super('session store unavailable', { cause })
    this.name = 'StoreDownError'
  }
}
