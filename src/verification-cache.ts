import { hash } from 'node:crypto'
import { lowS } from './jwt-algorithm.js'
import type { AccessClaims } from './jwt.js'

/**
 * The guard's verified tokens: claims by token digest, at most `capacity` of them.
 *
 * - **Keyed by SHA-256** (of an ES256 token's low-s form: `keep`), 32 bytes held as a 32-character string, not by the token (about 350
 *   characters): a key a seventh of the token's size, for about the CPU the Map would spend hashing the long
 *   token anyway. A hit is safe without the token: another token with the digest of one that passed
 *   full verification would be a second preimage of SHA-256. (fast-jwt's own cache keys by SHA-2 of
 *   the token for the same reason.) The digest is of the token's UTF-8 bytes, one-to-one here:
 *   fast-jwt refuses any token with a character outside base64url, so every key is of an ASCII token.
 * - **Only verified, unrevoked tokens are put in** (src/guard.ts): a flood of invalid or revoked
 *   tokens costs the attacker a verification each, as it would without the cache, and cannot push
 *   a valid token out. Other spellings of a signature are refused before (src/jwt.ts).
 * - **Oldest first out.** Every token lives at most `jwt.expiresIn`, so the entry put in first is
 *   the first that can expire: when full, it goes; otherwise it goes once it has expired, so the cache
 *   shrinks back to the tokens in use when the load drops.
 * - **The order is a ring of keys** (4 bytes an entry), not `Map.keys()`: V8 leaves a deleted entry in
 *   place until the table is rebuilt, and an iterator started at the front walks every one of them
 *   (50 µs per eviction measured in a full map of 100,000). Unlike an iterator kept across calls
 *   (the memory store's), the ring can look at the oldest entry without taking it.
 */
export class VerificationCache {
  readonly #entries = new Map<string, AccessClaims>()
  /** Whether ES256 tokens may come (a key of `jwt.keys` is one): their twin signatures share a key. */
  readonly #ecdsa: boolean
  /** Keys in insertion order, from #head, #count of them; a key already deleted is skipped when reached. */
  readonly #order: string[] = []
  #head = 0
  #count = 0
  readonly #capacity: number
  readonly #now: () => number

  /** `ecdsa`: an ES256 key is among `jwt.keys`. */
  constructor (capacity: number, now: () => number = Date.now, ecdsa = false) {
    this.#capacity = capacity
    this.#now = now
    this.#ecdsa = ecdsa
  }

  /** The digest of a token: its SHA-256 as a string of 32 one-byte characters. */
  static keyOf (token: string): string {
    return hash('sha256', token, 'binary')
  }

  /**
   * The claims of a verified token as `get` gives them, looked up by the token as presented
   * (`key`: its `keyOf`): by its own key first, which is its key when it is in low-s form, as every
   * token the plugin signs is (src/jwt.ts); only on a miss by its low-s twin's key, whose
   * signature is decoded for it.
   */
  find (token: string, key: string): AccessClaims | 'expired' | undefined {
    const found = this.get(key)
    if (found !== undefined) return found
    const twin = this.#twinKey(token)
    return twin === undefined ? undefined : this.get(twin)
  }

  /**
   * Keeps the claims of `token` (`key`: its `keyOf`), which passed full verification. An ES256
   * signature (r, s) verifies as (r, n − s) too (ECDSA's malleability, SEC 1 §4.1.4), so a token
   * has two valid forms: both take the key of the one with the low s, and one entry. Only a token
   * with a 64-byte signature in its one base64url spelling is so keyed: every other is keyed as it
   * is, and verified in full on a miss.
   */
  keep (token: string, key: string, claims: AccessClaims): void {
    this.add(this.#twinKey(token) ?? key, claims)
  }

  /** The key of an ES256 token's low-s twin, for a token with a high s (and ES256 keys configured). */
  #twinKey (token: string): string | undefined {
    if (!this.#ecdsa) return undefined
    const dot = token.lastIndexOf('.')
    const low = lowS(token.slice(dot + 1))
    return low === undefined ? undefined : VerificationCache.keyOf(token.slice(0, dot + 1) + low)
  }

  get size (): number {
    return this.#entries.size
  }

  /** The claims of a verified token, if still unexpired; an expired one is dropped. */
  get (key: string): AccessClaims | 'expired' | undefined {
    const claims = this.#entries.get(key)
    if (claims === undefined) return undefined
    // Strictly before exp: fast-jwt refuses from the millisecond after it; this never serves longer.
    if (claims.exp * 1000 > this.#now()) return claims
    this.#entries.delete(key)
    return 'expired'
  }

  /** Keeps the claims of a token that passed full verification. */
  add (key: string, claims: AccessClaims): void {
    const now = this.#now()
    // Bounded work per insertion: room for this one, and at most two more that are dead already.
    for (let spare = 2; this.#count > 0;) {
      const oldest = this.#order[this.#head]
      const kept = this.#entries.get(oldest)
      const dead = kept === undefined || kept.exp * 1000 <= now
      if (this.#count < this.#capacity && (!dead || spare-- === 0)) break
      if (kept !== undefined) this.#entries.delete(oldest)
      // The slot is not read again before it is reused: let go of the key now.
      this.#order[this.#head] = ''
      this.#head = (this.#head + 1) % this.#capacity
      this.#count--
    }
    // The ring grows by push until it reaches capacity (a `new Array(capacity)` this large would be
    // a slow dictionary array), then wraps.
    const tail = (this.#head + this.#count) % this.#capacity
    if (tail === this.#order.length) this.#order.push(key)
    else this.#order[tail] = key
    this.#count++
    this.#entries.set(key, claims)
  }
}
