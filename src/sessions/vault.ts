import { createCipheriv, createDecipheriv } from 'node:crypto'
import { randomBytesPooled } from '../random.js'
import { deriveKey } from './keys.js'

/**
 * Seals WeCom session_keys at rest (AES-256-GCM), with a key derived from the JWT signing key,
 * so a dump of the store alone does not hand out the keys that decrypt members' data.
 */
export interface Vault {
  seal (plain: string): string
  /** null when `sealed` was sealed with none of the keys (the JWT key changed since) or is damaged. */
  open (sealed: string): string | null
}

/** Seals with the current signing key's material; opens with any key still configured (a rotation). */
export function createVault (keyMaterial: string | Buffer, ...olderKeys: Array<string | Buffer>): Vault {
  return createVaultFor('session_key vault', [keyMaterial, ...olderKeys])
}

/**
 * A vault whose keys derive from `materials` for `purpose` alone (a key of one purpose never opens
 * another's): the first seals, every one opens. `sealKeys` seal permanent codes so.
 */
export function createVaultFor (purpose: string, materials: readonly [string | Buffer, ...Array<string | Buffer>]): Vault {
  const keys = materials.map((material) => deriveKey(material, purpose))
  const [key] = keys
  return {
    seal (plain) {
      const iv = randomBytesPooled(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')
    },
    open (sealed) {
      const raw = Buffer.from(sealed, 'base64')
      for (const candidate of keys) {
        const plain = openWith(candidate, raw)
        if (plain !== null) return plain
      }
      return null
    }
  }
}

function openWith (key: Buffer, raw: Buffer): string | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}

/** Far above any profile WeCom encrypts, far below what would cost a request real CPU. */
const MAX_ENCRYPTED_CHARS = 64 * 1024
/** Padded standard base64, as WeCom hands it out: anything else is not its data. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})+$|^(?:[A-Za-z0-9+/]{4})*[A-Za-z0-9+/]{2}(?:==|[A-Za-z0-9+/]=)$/
/** A 16-byte IV in padded base64. */
const IV = /^[A-Za-z0-9+/]{22}==$/

/**
 * `{ encryptedData, iv }` as wx.qy.* return them, or null for anything else a client may send:
 * another type, a missing or empty field, another encoding, an oversized blob.
 */
export function encryptedUserData (data: unknown): { encryptedData: string, iv: string } | null {
  if (typeof data !== 'object' || data === null) return null
  const { encryptedData, iv } = data as Record<string, unknown>
  if (typeof encryptedData !== 'string' || typeof iv !== 'string' || !IV.test(iv) ||
      encryptedData.length > MAX_ENCRYPTED_CHARS || !BASE64.test(encryptedData)) return null
  return { encryptedData, iv }
}

/**
 * Decrypts what wx.qy.getMobile, wx.qy.getEmail and wx.qy.getEnterpriseUserInfo return: the usual
 * WeChat scheme, AES-128-CBC with PKCS#7 padding, keyed by the member's session_key. Returns null
 * when the data does not decrypt to a JSON object.
 */
export function decryptUserData (sessionKey: string, encryptedData: string, iv: string): Record<string, unknown> | null {
  const key = Buffer.from(sessionKey, 'base64')
  const vector = Buffer.from(iv, 'base64')
  if (key.length !== 16 || vector.length !== 16) return null
  try {
    const decipher = createDecipheriv('aes-128-cbc', key, vector)
    const plain = Buffer.concat([decipher.update(Buffer.from(encryptedData, 'base64')), decipher.final()])
    const data: unknown = JSON.parse(plain.toString('utf8'))
    return typeof data === 'object' && data !== null && !Array.isArray(data) ? data as Record<string, unknown> : null
  } catch {
    return null
  }
}
