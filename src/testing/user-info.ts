/**
 * What wx.qy.getMobile, getEmail and getEnterpriseUserInfo hand the mini program: data sealed
 * with the member's session_key, as the plugin's `decrypt` opens it.
 */
import { createCipheriv, randomBytes } from 'node:crypto'

/**
 * AES-128-CBC with PKCS#7 padding, keyed by the base64 session_key, over the JSON of
 * `{ ...data, watermark: { appid, timestamp } }`, the timestamp in seconds of `timestampMs`.
 */
export function sealUserInfo (
  sessionKey: string,
  data: Record<string, unknown>,
  appid: string,
  iv: Buffer,
  timestampMs: number
): { encryptedData: string; iv: string } {
  const key = Buffer.from(sessionKey, 'base64')
  if (key.length !== 16) throw new Error('session_key must be 16 bytes in base64')
  if (iv.length !== 16) throw new Error('iv must be 16 bytes')
  const payload = { ...data, watermark: { appid, timestamp: Math.floor(timestampMs / 1000) } }
  // Node's default auto-padding is PKCS#7, the scheme WeChat and WeCom use.
  const cipher = createCipheriv('aes-128-cbc', key, iv)
  const encrypted = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()])
  return { encryptedData: encrypted.toString('base64'), iv: iv.toString('base64') }
}

/**
 * Encrypts `data` the way wx.qy.getMobile / getEmail / getEnterpriseUserInfo deliver it:
 * AES-128-CBC with PKCS#7 padding, keyed by the base64 session_key, over the JSON of
 * `{ ...data, watermark: { appid, timestamp } }`. The iv is random unless given.
 */
export function encryptWithSessionKey (
  sessionKey: string,
  data: Record<string, unknown>,
  appid: string,
  iv: Buffer = randomBytes(16)
): { encryptedData: string; iv: string } {
  return sealUserInfo(sessionKey, data, appid, iv, Date.now())
}
