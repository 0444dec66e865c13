import { createDecipheriv, randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { DEFAULT_AGENT_ID } from '../../src/testing/directory.js'
import { callbackSignature, encryptCallbackMessage, envelopeXml, eventXml } from '../../src/testing/envelope.js'
import type { WecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, CORP_B, SECRET_A, SECRET_B } from './setup.js'

// The callback's own secrets: found in no log line, error or response (test/core/secrets.ts).
export const TOKEN_A = 'callbackTokenOfCorpA0123'
export const KEY_A = 'aW5kZXBlbmRlbnRseUNob3NlbkVuY29kaW5nQUVTS2V'
export const TOKEN_B = 'callbackTokenOfCorpB4567'
export const KEY_B = 'Q29ycEJzT3duRW5jb2RpbmdBRVNLZXlGb3JUZXN0czA'

/** The plugin's corps with their callbacks: the same URL serves both. */
export const callbackCorps = () => [
  { corpId: CORP_A, secret: SECRET_A, callback: { token: TOKEN_A, encodingAESKey: KEY_A } },
  { corpId: CORP_B, secret: SECRET_B, callback: { token: TOKEN_B, encodingAESKey: KEY_B } }
]

/** The app on a loopback port, and the simulator's corps saved with it as their callback URL. */
export async function connect (app: FastifyInstance, sim: WecomSimulator): Promise<string> {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `${address}/wecom/callback`
  await sim.setCallback(CORP_A, { url, token: TOKEN_A, encodingAESKey: KEY_A })
  await sim.setCallback(CORP_B, { url, token: TOKEN_B, encodingAESKey: KEY_B })
  return url
}

/** WeCom's change_contact/delete_user for `userid`, at `createTime` (epoch seconds; now by default). */
export function deleteUserXml (userid: string, createTime = Math.floor(Date.now() / 1000), corpId = CORP_A): string {
  return eventXml({
    ToUserName: corpId, FromUserName: 'sys', CreateTime: createTime, MsgType: 'event', Event: 'change_contact', ChangeType: 'delete_user', UserID: userid
  })
}

export interface Envelope {
  token?: string
  key?: string
  /** The id sealed inside the ciphertext; the corp by default. */
  receiveId?: string
  /** Epoch seconds of the envelope. */
  timestamp?: number
  signature?: string
}

/**
 * A POST as WeCom makes it, from the simulator's envelope code (not the plugin's); build `xml`
 * with its eventXml, as the simulator's own deliveries are.
 */
export function post (app: FastifyInstance, corpId: string, xml: string, envelope: Envelope = {}): Promise<LightMyRequestResponse> {
  const encrypted = encryptCallbackMessage(envelope.key ?? KEY_A, xml, envelope.receiveId ?? corpId)
  return postEncrypted(app, corpId, encrypted, envelope)
}

export function postEncrypted (app: FastifyInstance, corpId: string, encrypted: string, envelope: Envelope = {}, body?: string): Promise<LightMyRequestResponse> {
  const timestamp = String(envelope.timestamp ?? Math.floor(Date.now() / 1000))
  const nonce = randomBytes(6).toString('hex')
  const signature = envelope.signature ?? callbackSignature(envelope.token ?? TOKEN_A, timestamp, nonce, encrypted)
  return app.inject({
    method: 'POST',
    url: '/wecom/callback',
    query: { msg_signature: signature, timestamp, nonce },
    headers: { 'content-type': 'text/xml' },
    payload: body ?? envelopeXml(corpId, DEFAULT_AGENT_ID, encrypted)
  })
}

/**
 * Opens a ciphertext with node:crypto, written from WeCom's description rather than taken from
 * either implementation: AES-256-CBC, iv the key's first 16 bytes, 32-byte PKCS#7 padding, then
 * random(16) ‖ length(4) ‖ message ‖ receiveId.
 */
export function openIndependently (encodingAESKey: string, encrypted: string): { message: string, receiveId: string, padding: number } {
  const key = Buffer.from(encodingAESKey + '=', 'base64')
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16))
  decipher.setAutoPadding(false)
  const plain = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64')), decipher.final()])
  const padding = plain[plain.length - 1]
  const body = plain.subarray(0, plain.length - padding)
  const length = body.readUInt32BE(16)
  return { message: body.subarray(20, 20 + length).toString('utf8'), receiveId: body.subarray(20 + length).toString('utf8'), padding }
}
