import { hkdfSync } from 'node:crypto'

/**
 * A 256-bit key of its own for each use of a JWT signing key's material (HKDF-SHA256, RFC 5869,
 * the use as `info`): the refresh tokens' rotation and tag keys and the vault's, so that none of
 * them is the signing key nor can stand for another.
 */
export function deriveKey (material: string | Buffer, use: string): Buffer {
  return Buffer.from(hkdfSync('sha256', material, 'fastify-wecom-auth', use, 32))
}
