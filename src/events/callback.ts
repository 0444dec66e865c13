import { timingSafeEqual } from 'node:crypto'
import { decrypt, getSignature } from '@wecom/crypto'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { CallbackForbiddenError, CallbackInvalidError } from '../errors.js'

/**
 * WeCom's callback ("接收事件服务器", doc path/90930; the crypto: path/90968): the signature,
 * AES-256-CBC with WeCom's 32-byte PKCS#7 padding through @wecom/crypto, WeCom's own package, and
 * the XML through fast-xml-parser with entities left unexpanded. Parses and decides; knows nothing
 * of Fastify: every refusal is an error of the errors table, with no side effect.
 */

/**
 * An event as WeCom sends it, its fields under WeCom's own names, values as the text WeCom wrote
 * (a userid "007" stays "007"): `ToUserName` (the corpid), `FromUserName`, `CreateTime` (epoch
 * seconds), `MsgType`, `Event` (`change_contact`, `unsubscribe`, …), `ChangeType` (`delete_user`,
 * `update_user`, …), `UserID`, `NewUserID`, `Status`, `Department`, … Nested elements are objects.
 */
export type WecomEvent = Readonly<Record<string, unknown>>

/** A corp's callback settings, from the admin console: the Token and EncodingAESKey WeCom signs with. */
export interface CallbackCorp {
  corpId: string
  token: string
  encodingAESKey: string
}

/** The query WeCom adds to the callback URL. */
export interface CallbackQuery {
  msg_signature?: unknown
  timestamp?: unknown
  nonce?: unknown
  echostr?: unknown
}

/**
 * Seconds a delivery's `timestamp` may be away from this server's clock: WeCom signs just before
 * sending, so minutes cover a skewed clock, and a recorded delivery replayed later is refused.
 */
export const TIMESTAMP_WINDOW = 300
/** An event is under 2 KiB; a Fastify bodyLimit in bytes for the callback route. */
export const CALLBACK_BODY_LIMIT = 32 * 1024

const SIGNATURE = /^[0-9a-f]{40}$/
const TIMESTAMP = /^\d{1,12}$/
const NONCE = /^[\x21-\x7e]{1,64}$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

const parser = new XMLParser({
  // No entity is expanded (no billion laughs, no external entity): WeCom's fields are CDATA text.
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Text stays text: userids and ids are strings, whatever digits they hold.
  parseTagValue: false,
  trimValues: true,
  maxNestedTags: 8
})

/**
 * GET: WeCom's URL check. Verifies `msg_signature` over (token, timestamp, nonce, echostr) for one
 * of `corps`, decrypts `echostr`, and returns its plain text, which the route answers as is.
 */
export function verifyUrl (corps: readonly CallbackCorp[], query: CallbackQuery, now: number): string {
  const echostr = ciphertext(query.echostr, 'echostr')
  const { message } = open(corps, query, echostr, now)
  // WeCom's echo is a short random string. A delivery's Encrypt, replayed as an echostr with its
  // signature (the same formula) within the time window, would otherwise be answered decrypted.
  if (message.includes('<')) throw new CallbackForbiddenError('the echostr is an event, not an echo')
  return message
}

/**
 * POST: one event delivery. `body` is the XML envelope (`<xml><ToUserName/><Encrypt/>…</xml>`);
 * returns the corp it is for and the parsed event inside.
 */
export function openEvent (corps: readonly CallbackCorp[], query: CallbackQuery, body: unknown, now: number): { corpId: string, event: WecomEvent } {
  const { receiver, message: event } = openMessage(corps, query, body, now)
  return { corpId: receiver.corpId, event: addressedEvent(event, receiver.corpId) }
}

/**
 * A corp's event opened for `corpId` (the receiver id inside the ciphertext): its plain ToUserName
 * must agree with it, and it must carry its CreateTime. Else 403 or 400.
 */
export function addressedEvent (event: WecomEvent, corpId: string): WecomEvent {
  if (event.ToUserName !== corpId) throw new CallbackForbiddenError('the event is not addressed to that corp')
  if (!isTimestamp(event.CreateTime)) throw new CallbackInvalidError('the event has no CreateTime')
  return event
}

/** Whether the receiver id inside a ciphertext opened with `receiver`'s key is one the route takes: by default, its own `corpId`. */
export type ReceiverCheck = (receiver: CallbackCorp, id: string) => boolean
const ownId: ReceiverCheck = (receiver, id) => id === receiver.corpId

/**
 * A POST's message, whatever it is: the body's envelope (`<xml>…<Encrypt/></xml>`) checked and
 * opened for one of `receivers` (each a Token and key, and the receiver id the ciphertext must
 * name: `corpId`, or another `accepts` takes), and the XML inside parsed, with that receiver id.
 */
export function openMessage (
  receivers: readonly CallbackCorp[], query: CallbackQuery, body: unknown, now: number, accepts: ReceiverCheck = ownId
): { receiver: CallbackCorp, id: string, message: WecomEvent } {
  signedQuery(query, now)
  if (typeof body !== 'string') throw new CallbackInvalidError('the body is not XML')
  const envelope = parseXml(body)
  const encrypted = ciphertext(envelope.Encrypt, 'Encrypt')
  const { corp, id, message } = open(receivers, query, encrypted, now, accepts)
  return { receiver: corp, id, message: parseXml(message) }
}

/**
 * The query's signature, timestamp and nonce, well formed and the timestamp within the window of
 * this server's clock: checked before anything of the body is read, so that a request without
 * them costs no XML parsing.
 */
function signedQuery (query: CallbackQuery, now: number): { signature: string, timestamp: string, nonce: string } {
  const { msg_signature: signature, timestamp, nonce } = query
  if (typeof signature !== 'string' || !SIGNATURE.test(signature) || typeof timestamp !== 'string' ||
      !TIMESTAMP.test(timestamp) || typeof nonce !== 'string' || !NONCE.test(nonce)) {
    throw new CallbackInvalidError('msg_signature, timestamp and nonce are required')
  }
  if (Math.abs(now / 1000 - Number(timestamp)) > TIMESTAMP_WINDOW) {
    throw new CallbackForbiddenError(`the timestamp is more than ${TIMESTAMP_WINDOW} s away from this server's clock`)
  }
  return { signature, timestamp, nonce }
}

/** Epoch seconds as WeCom writes them in a message: digits only. */
export function isTimestamp (value: unknown): value is string {
  return typeof value === 'string' && TIMESTAMP.test(value)
}

/**
 * The corp whose Token signed the delivery and whose key decrypts it to its own corpId. Several
 * corps may share one URL: each corp's Token is tried (a SHA-1 each), then the key of each that
 * matched, until the receiver id inside names that corp.
 */
function open (
  corps: readonly CallbackCorp[], query: CallbackQuery, encrypted: string, now: number, accepts: ReceiverCheck = ownId
): { corp: CallbackCorp, id: string, message: string } {
  const { signature, timestamp, nonce } = signedQuery(query, now)
  const signed = corps.filter((corp) => sameHex(getSignature(corp.token, timestamp, nonce, encrypted), signature))
  if (signed.length === 0) throw new CallbackForbiddenError('msg_signature does not match')
  let decrypted = false
  for (const corp of signed) {
    const opened = decryptFor(corp, encrypted)
    if (opened === null) continue
    decrypted = true
    if (accepts(corp, opened.id)) return { corp, id: opened.id, message: opened.message }
  }
  throw decrypted
    ? new CallbackForbiddenError('the receiver id is not one this route takes')
    : new CallbackInvalidError('the message does not decrypt')
}

function decryptFor (corp: CallbackCorp, encrypted: string): { message: string, id: string } | null {
  try {
    return decrypt(corp.encodingAESKey, encrypted)
  } catch {
    // Not a whole number of blocks, too short for its header: @wecom/crypto throws; the message
    // says nothing of the key.
    return null
  }
}

function ciphertext (value: unknown, name: string): string {
  // Whole AES blocks in base64: a multiple of 4 characters.
  if (typeof value !== 'string' || value.length % 4 !== 0 || value.length > CALLBACK_BODY_LIMIT || !BASE64.test(value)) {
    throw new CallbackInvalidError(`${name} is not WeCom's ciphertext`)
  }
  return value
}

/** The `<xml>` element's children; anything else is refused. */
function parseXml (xml: string): Record<string, unknown> {
  if (XMLValidator.validate(xml) !== true) throw new CallbackInvalidError('the body is not XML')
  let parsed: unknown
  try {
    parsed = parser.parse(xml)
  } catch {
    throw new CallbackInvalidError('the body is not XML')
  }
  const root = (parsed as { xml?: unknown } | null)?.xml
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new CallbackInvalidError('the body is not WeCom\'s <xml>')
  return root as Record<string, unknown>
}

function sameHex (computed: string, presented: string): boolean {
  return computed.length === presented.length && timingSafeEqual(Buffer.from(computed), Buffer.from(presented))
}
