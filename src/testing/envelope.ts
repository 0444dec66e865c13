/**
 * The envelope of WeCom's callbacks, on node:crypto alone and written from WeCom's description
 * (doc path/90968), so that it checks the plugin's rather than sharing it: the event XML, its
 * ciphertext, the msg_signature and the request that carries them. The tests build their
 * hand-made deliveries from here too, so that they and the simulator cannot drift apart.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto'

/** A corp's "接收事件服务器" settings, as its admin saves them in the console. */
export interface SimulatedCallback {
  /** Where events are POSTed, e.g. 'http://127.0.0.1:3000/wecom/callback'. */
  url: string
  token: string
  /** 43 characters of base64 (the AES-256 key without its trailing '='). */
  encodingAESKey: string
}

/** A request to a callback URL: its query string and (for an event's POST) its XML body. */
export interface CallbackRequest { query: string, body: string }

/**
 * WeCom's callback ciphertext (doc path/90968), on node:crypto alone: AES-256-CBC keyed by the
 * EncodingAESKey (its first 16 bytes the iv) over random(16) ‖ length(4, big-endian) ‖ message ‖
 * receiveId, padded PKCS#7-style to a multiple of 32 bytes; base64.
 */
export function encryptCallbackMessage (encodingAESKey: string, message: string, receiveId: string, random: Buffer = randomBytes(16)): string {
  const key = Buffer.from(`${encodingAESKey}=`, 'base64')
  if (key.length !== 32) throw new Error('encodingAESKey must be 43 characters of base64')
  const text = Buffer.from(message, 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(text.length)
  const plain = Buffer.concat([random, length, text, Buffer.from(receiveId, 'utf8')])
  const pad = 32 - (plain.length % 32)
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false)
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64')
}

/** WeCom's msg_signature: SHA-1 (hex) of the four strings sorted and joined. */
export function callbackSignature (token: string, timestamp: string, nonce: string, encrypted: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypted].sort().join('')).digest('hex')
}

/** The XML element of a callback, text in CDATA (a ']]>' inside split across two sections). */
function cdata (name: string, value: string): string {
  return `<${name}><![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]></${name}>`
}

/**
 * An event's XML as WeCom sends it (and its docs show it): `<xml>` with one element per field in
 * the order given, CreateTime a bare number, every other value CDATA text.
 */
export function eventXml (fields: Readonly<Record<string, string | number>>): string {
  return `<xml>${Object.entries(fields).map(([name, value]) =>
    name === 'CreateTime' ? `<${name}>${value}</${name}>` : cdata(name, String(value))).join('')}</xml>`
}

/** The body WeCom POSTs: the ciphertext, beside the corp and the AgentID in clear. */
export function envelopeXml (corpId: string, agentId: number | string, encrypted: string): string {
  return `<xml>${cdata('ToUserName', corpId)}${cdata('AgentID', String(agentId))}${cdata('Encrypt', encrypted)}</xml>`
}

/**
 * A signed, encrypted request to a corp's callback, as WeCom makes it: the URL check's GET
 * (`echostr` in the query, `plain` its text) or an event's POST (`plain` the event XML, sealed in
 * the body's Encrypt). `timestamp` is in epoch seconds; the nonce is random.
 */
export function callbackRequest (
  corpId: string,
  config: Pick<SimulatedCallback, 'token' | 'encodingAESKey'>,
  plain: string,
  carrier: { echostr: true } | { agentId: number },
  timestamp: number
): CallbackRequest {
  const encrypted = encryptCallbackMessage(config.encodingAESKey, plain, corpId)
  const nonce = randomBytes(8).toString('hex')
  const signed = { msg_signature: callbackSignature(config.token, String(timestamp), nonce, encrypted), timestamp: String(timestamp), nonce }
  if ('echostr' in carrier) return { query: new URLSearchParams({ ...signed, echostr: encrypted }).toString(), body: '' }
  return { query: new URLSearchParams(signed).toString(), body: envelopeXml(corpId, carrier.agentId, encrypted) }
}
