import { z } from 'zod'
import { required, strict } from '../option-issues.js'

/** WeCom's EncodingAESKey: 43 base64 characters, the AES key without its `=`. */
const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/

/**
 * A callback's settings from the admin console ("接收事件服务器"), a corp's or a suite's: the Token,
 * up to 128 characters, and the EncodingAESKey WeCom signs and encrypts with (doc path/90968).
 */
export const callbackSettings = {
  token: z.string(required('a string')).min(1, { error: 'must not be empty' }).max(128, { error: 'must be at most 128 characters' }),
  encodingAESKey: z.string(required('a string')).regex(ENCODING_AES_KEY, { error: 'must be the 43 characters WeCom generates' })
}

export const callbackOptions = z.strictObject(callbackSettings, strict())
