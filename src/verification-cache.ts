import { hash } from 'node:crypto'
import type { AccessClaims } from './jwt.js'

/**
 * The guard's verified tokens: claims by token digest, at most `capacity` of them.
 *
 * - **Keyed by SHA-256** (of an ES256 token's low-s form: `keyFor`), 32 bytes held as a 32-character string, not by the token (about 350
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
   * The key of a token. An ES256 signature (r, s) verifies as (r, n − s) too (ECDSA's
   * malleability, SEC 1 §4.1.4), so a token has two valid forms: both take the key of the one
   * with the low s, and one entry. Only a token with a 64-byte signature in its one base64url
   * spelling is so keyed: every other is keyed as it is, and verified in full on a miss.
   */
  keyFor (token: string): string {
    if (this.#ecdsa) {
      const dot = token.lastIndexOf('.')
      if (token.length - dot - 1 === ES256_SIGNATURE_CHARS) {
        const low = lowS(token.slice(dot + 1))
        if (low !== undefined) return VerificationCache.keyOf(token.slice(0, dot + 1) + low)
      }
    }
    return VerificationCache.keyOf(token)
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

/** Base64url characters of a 64-byte signature (ES256's r || s, RFC 7518 §3.4). */
const ES256_SIGNATURE_CHARS = 86
/** P-256's group order n and ⌊n / 2⌋, big-endian (SEC 2 §2.4.2). */
const P256_N = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex')
const P256_HALF_N = Buffer.from('7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8', 'hex')

/**
 * The low-s twin of an ES256 signature whose s is above n / 2 (and below n), in base64url;
 * undefined when s is already low, out of range, or the signature is not in its one spelling.
 */
function lowS (signature: string): string | undefined {
  const bytes = Buffer.from(signature, 'base64url')
  if (bytes.length !== 64) return undefined
  const s = bytes.subarray(32)
  if (s.compare(P256_HALF_N) <= 0 || s.compare(P256_N) >= 0) return undefined
  if (bytes.toString('base64url') !== signature) return undefined
  // n − s, byte by byte from the least significant.
  let borrow = 0
  for (let i = 31; i >= 0; i--) {
    const difference = P256_N[i]! - s[i]! - borrow
    s[i] = difference & 0xff
    borrow = difference < 0 ? 1 : 0
  }
  return bytes.toString('base64url')
}
