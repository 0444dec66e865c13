import { createPublicKey, type KeyObject } from 'node:crypto'

/** The algorithms of `jwt.keys`: HS256 for a secret, ES256 or RS256 as the public key says. */
export type JwtAlgorithm = 'HS256' | 'ES256' | 'RS256'

/**
 * The algorithm a public key pins: ES256 for a P-256 key only (another curve's 64-byte signatures
 * would be taken for P-256's by the guard's cache, and RFC 7518 §3.4 ties ES256 to P-256), RS256
 * for an RSA key of at least 2048 bits (RFC 7518 §3.3).
 */
export function algorithmOf (publicKey: string | Buffer, option: string): JwtAlgorithm {
  let key: KeyObject
  try {
    key = createPublicKey(publicKey)
  } catch {
    throw new Error(`fastify-wecom-auth: ${option} is not a valid PEM public key`)
  }
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails
  if (type === 'ec' && details?.namedCurve === 'prime256v1') return 'ES256'
  if (type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return 'RS256'
  const what = type === 'ec' ? `an EC key on ${details?.namedCurve ?? 'another curve'}` : type === 'rsa' ? `an RSA key of ${details?.modulusLength ?? '?'} bits` : `a ${type ?? 'unknown'} key`
  throw new Error(`fastify-wecom-auth: ${option} must be an EC (P-256) or RSA (2048 bits or more) key, not ${what}`)
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
export function lowS (signature: string): string | undefined {
  // Before any decoding: most tokens are not of this length (HS256's is 43 characters).
  if (signature.length !== ES256_SIGNATURE_CHARS) return undefined
  const bytes = canonicalBytes(signature)
  if (bytes === undefined) return undefined
  const s = bytes.subarray(32)
  if (s.compare(P256_HALF_N) <= 0 || s.compare(P256_N) >= 0) return undefined
  // n − s, byte by byte from the least significant.
  let borrow = 0
  for (let i = 31; i >= 0; i--) {
    const difference = P256_N[i]! - s[i]! - borrow
    s[i] = difference & 0xff
    borrow = difference < 0 ? 1 : 0
  }
  return bytes.toString('base64url')
}

/**
 * `token` (an ES256 JWS) with its signature in low-s form: the one of its two valid forms the
 * plugin issues, so that the guard's cache finds a token as presented, without decoding its
 * signature (VerificationCache.find).
 */
export function withLowS (token: string): string {
  const dot = token.lastIndexOf('.')
  const low = lowS(token.slice(dot + 1))
  return low === undefined ? token : token.slice(0, dot + 1) + low
}

/**
 * The bytes of a base64url segment in its one spelling, undefined for another (a last character
 * with stray low bits, padding): two spellings of one signature must not be two tokens.
 */
export function canonicalBytes (segment: string): Buffer | undefined {
  const bytes = Buffer.from(segment, 'base64url')
  return bytes.toString('base64url') === segment ? bytes : undefined
}
