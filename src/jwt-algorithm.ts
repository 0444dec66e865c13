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
