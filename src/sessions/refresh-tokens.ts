import { createHmac, hash, timingSafeEqual } from 'node:crypto'
import { randomBytesPooled } from '../random.js'
import { deriveKey } from './keys.js'

/** A refresh token taken apart. Only `parse` makes one, so its parts have the right shapes. */
export interface PresentedToken {
  token: string
  sid: string
  generation: number
}

/**
 * Refresh tokens: `<sid>.<generation>.<base64url(R ‖ tag)>`.
 *
 * - The sid finds the session in one read; the generation says how many rotations the session had
 *   made when the token was issued, so a token older than the current one is told apart without a
 *   list of the hashes rotated away from.
 * - R is 256 bits: random at login, and at each rotation an HMAC of the presented token under a
 *   server key. The next token is thus a function of the presented one: a retry of a rotation
 *   (a 503, a lost answer, a double tap) can be handed the very token the first try produced, while
 *   the store keeps only a hash of the current token, never a token.
 * - The tag (128 bits, HMAC under another key) makes a token of an older generation provably ours:
 *   only then is its reuse theft that ends the session, so someone who learnt a sid (it is a claim of
 *   every access token) cannot end the session with a made-up old token.
 *
 * Both keys derive from the JWT signing key, like the vault's; the tag of any key still in
 * `jwt.keys` proves a token. A token of an older generation issued under a key since removed no
 * longer proves itself: its reuse is refused without ending the session.
 * The current token does not depend on the key: it is checked against the stored hash.
 */
export interface RefreshTokens {
  /** The generation-0 token of a new session; its sid is the session's. */
  first (sid: string): string
  /** The token a rotation of `presented` issues: always the same one for the same presented token. */
  next (presented: PresentedToken): string
  /**
   * The tokens a rotation of `presented` may have issued on any instance: under each key of
   * `jwt.keys`, the current one first. While a key rotation rolls out, an instance whose first key
   * is still the old one must know the token an instance already on the new key issued.
   */
  nextCandidates (presented: PresentedToken): string[]
  /** null for anything that is not shaped like one of our tokens (checked before any store read). */
  parse (token: string): PresentedToken | null
  /** Whether the token was issued by this server (with the current key). */
  authentic (presented: PresentedToken): boolean
}

const TOKEN = /^([\w-]{16,64})\.(0|[1-9]\d{0,14})\.([\w-]{64})$/
const R_BYTES = 32
const TAG_BYTES = 16

/** Issues under the current signing key's material; a tag of any key still configured proves a token ours (a rotation). */
export function createRefreshTokens (keyMaterial: string | Buffer, ...olderKeys: Array<string | Buffer>): RefreshTokens {
  const keys = [keyMaterial, ...olderKeys].map((material) => ({
    rotation: deriveKey(material, 'refresh token rotation'),
    tag: deriveKey(material, 'refresh token tag')
  }))
  const [current] = keys
  type Keys = typeof current

  const tagOf = (sid: string, generation: number, r: Buffer, key: Buffer) =>
    createHmac('sha256', key).update(`${sid}.${generation}.`).update(r).digest().subarray(0, TAG_BYTES)
  const assemble = (sid: string, generation: number, r: Buffer, under: Keys = current) =>
    `${sid}.${generation}.${Buffer.concat([r, tagOf(sid, generation, r, under.tag)]).toString('base64url')}`
  const nextUnder = (under: Keys, { token, sid, generation }: PresentedToken) =>
    assemble(sid, generation + 1, createHmac('sha256', under.rotation).update(token).digest(), under)

  return {
    first: (sid) => assemble(sid, 0, randomBytesPooled(R_BYTES)),
    next: (presented) => nextUnder(current, presented),
    nextCandidates: (presented) => keys.map((under) => nextUnder(under, presented)),
    parse (token) {
      const match = TOKEN.exec(token)
      return match === null ? null : { token, sid: match[1], generation: Number(match[2]) }
    },
    authentic ({ token, sid, generation }) {
      const raw = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url')
      return keys.some((under) => timingSafeEqual(raw.subarray(R_BYTES), tagOf(sid, generation, raw.subarray(0, R_BYTES), under.tag)))
    }
  }
}

/** What the store keeps of a refresh token. */
export function hashOf (refreshToken: string): string {
  return hash('sha256', refreshToken, 'base64url')
}
