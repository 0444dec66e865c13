/**
 * A WeCom API simulator: a real HTTP server on loopback that answers gettoken, jscode2session,
 * user/get and message/send the way qyapi.weixin.qq.com does (always HTTP 200, success and failure
 * told apart by `errcode` only), and that sends a corp's callback URL the signed, encrypted events
 * WeCom sends. Built on node:http alone so that benchmarks can drive it at thousands of requests
 * per second without the simulator being the bottleneck; its callback crypto is node:crypto alone,
 * written from WeCom's description (doc path/90968), so that it checks the plugin's rather than
 * sharing it.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type WecomEndpoint = 'gettoken' | 'jscode2session' | 'user/get' | 'message/send'

export interface SimulatedMember {
  userid: string
  name?: string
  department?: number[]
  position?: string
  /** 1 active (default), 2 disabled, 4 not activated, 5 left */
  status?: number
  /** Inside the app's visible range (default true); false makes user/get answer 60011. */
  visible?: boolean
  /** Never returned by user/get, like an app created after 2022-06-20. */
  mobile?: string
  /** Never returned by user/get, like an app created after 2022-06-20. */
  email?: string
}

/** A corp's "接收事件服务器" settings, as its admin saves them in the console. */
export interface SimulatedCallback {
  /** Where events are POSTed, e.g. 'http://127.0.0.1:3000/wecom/callback'. */
  url: string
  token: string
  /** 43 characters of base64 (the AES-256 key without its trailing '='). */
  encodingAESKey: string
}

export interface SimulatedCorp {
  corpId: string
  secret: string
  members?: SimulatedMember[]
  /** Checked (GET) before the first event is sent, as WeCom checks it when the admin saves it. */
  callback?: SimulatedCallback
  /** The AgentID events carry. Default 1000002. */
  agentId?: number
}

/** One event the simulator sent (or tried to send) to a corp's callback URL. */
export interface SimulatedDelivery {
  corpId: string
  /** The event's fields as sent, e.g. { Event: 'change_contact', ChangeType: 'delete_user', UserID }. */
  readonly event: Readonly<Record<string, string>>
  /** The decrypted XML, as the callback should read it. */
  readonly xml: string
  /**
   * POSTs made so far: the first, then one 5 s (callbackRetryDelay) after each without `success`,
   * three at most. 0 when the URL failed WeCom's check: nothing was sent.
   */
  readonly attempts: number
  /** The callback answered `success`. */
  readonly acknowledged: boolean
}

/** What a callback answered one POST. */
export interface CallbackAnswer { status: number, body: string }

export type SimulatedFault =
  | { errcode: number; errmsg?: string }
  | { timeout: true }
  | { drop: true }
  | { malformed: true }
  | { delay: number }
  /** Answers normally, but sends the body one byte every `trickle` ms. */
  | { trickle: number }

export interface WecomSimulatorOptions {
  corps?: SimulatedCorp[]
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0: a free port. */
  port?: number
  /** Seconds; expires_in of issued tokens. Default 7200. */
  tokenTtl?: number
  /** Seconds; life of a code from issueCode. Default 300. */
  codeTtl?: number
  /** Milliseconds added to every call. Default 0. */
  latency?: number
  /**
   * Clock in milliseconds. Default Date.now. advance() moves the simulator ahead of it (codes,
   * tokens); callbacks carry this clock's time, as an app compares it with its own.
   */
  now?: () => number
  /** Milliseconds between a callback POST without `success` and its resend. Default 5000, WeCom's. */
  callbackRetryDelay?: number
  /**
   * Answers requests to paths outside WeCom's endpoints (body unread), where the default is
   * errcode 40066 as WeCom answers; the command-line simulator serves its /sim/ routes here.
   */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void
}

export interface SimulatedRequest {
  /** 1 for the simulator's first request and counting on, past the log's bound. */
  id: number
  endpoint: WecomEndpoint
  query: Record<string, string>
  /** The errcode answered; undefined until then, and for a fault that sends no JSON. */
  errcode?: number
  /** Milliseconds from arrival to the start of the answer (a trickle goes on after); undefined while unanswered. */
  ms?: number
}

export interface WecomSimulator {
  /** Base URL, e.g. 'http://127.0.0.1:41234'; the endpoints live under /cgi-bin/. */
  readonly url: string
  /** Live counters of every request per endpoint, faulted or not. */
  readonly calls: Record<WecomEndpoint, number>
  resetCalls(): void
  /** The last 100 requests, oldest first, with query parameters as WeCom parsed them and what was answered. */
  readonly requests: ReadonlyArray<SimulatedRequest>
  /** Adds a corp, or replaces the secret and members of one already there. */
  addCorp(corp: SimulatedCorp): void
  /** Adds or replaces a member. */
  setMember(corpId: string, member: SimulatedMember): void
  updateMember(corpId: string, userid: string, patch: Partial<SimulatedMember>): void
  /**
   * Afterwards user/get answers 60111 for that userid; with a callback, the corp is sent
   * change_contact/delete_user. Resolves after the event's first POST (or at once without a
   * callback); resends go on in the background.
   */
  removeMember(corpId: string, userid: string): Promise<SimulatedDelivery | undefined>
  /** Status 2 (user/get refuses the login), and change_contact/update_user with Status 2. */
  disableMember(corpId: string, userid: string): Promise<SimulatedDelivery | undefined>
  /** Into or out of the app's visible range (60011 outside), and the subscribe / unsubscribe event. */
  setVisible(corpId: string, userid: string, visible: boolean): Promise<SimulatedDelivery | undefined>
  /**
   * Saves a corp's callback as the admin console does: the URL is checked first (a GET with an
   * encrypted echostr whose plain text must come back), and the promise rejects if it fails.
   */
  setCallback(corpId: string, callback: SimulatedCallback): Promise<void>
  /** Sends any event (ToUserName, CreateTime and MsgType are filled in unless given). */
  sendEvent(corpId: string, fields: Record<string, string | number>): Promise<SimulatedDelivery>
  /** Every event sent so far, oldest first. */
  readonly deliveries: ReadonlyArray<SimulatedDelivery>
  /**
   * POSTs a delivery again, once, as a resend or a replay: `same` is the very request sent first
   * (signature, timestamp, nonce, ciphertext), `new` the same event freshly signed and encrypted.
   */
  redeliver(delivery: SimulatedDelivery, envelope: 'same' | 'new'): Promise<CallbackAnswer>
  /** The bodies message/send accepted, per corp, oldest first. */
  readonly messages: ReadonlyArray<{ corpId: string, body: Record<string, unknown> }>
  /** Like wx.qy.login: a single-use code living codeTtl seconds, with a new session_key. */
  issueCode(corpId: string, userid: string): string
  /** The base64 session_key of the member's latest code. */
  sessionKey(corpId: string, userid: string): string | undefined
  /** What wx.qy.getMobile and friends return, encrypted with the member's current session_key. */
  encryptUserInfo(
    corpId: string,
    userid: string,
    data: Record<string, unknown>,
    appid: string,
  ): { encryptedData: string; iv: string }
  /** Applies to tokens issued from now on. */
  setTokenTtl(seconds: number): void
  /** Ends live tokens (of one corp, or all) early; using them afterwards answers `errcode`. */
  expireTokens(corpId?: string, errcode?: 42001 | 40014): void
  setLatency(ms: number): void
  /** Queues a fault for the next `times` calls of the endpoint (default 1; Infinity allowed). */
  inject(endpoint: WecomEndpoint, fault: SimulatedFault, times?: number): void
  clearFaults(): void
  /** Moves the simulator clock forward, for code and token expiry. */
  advance(ms: number): void
  /** Closes the server and every socket, including requests held by a timeout fault. */
  close(): Promise<void>
}

const PATHS: ReadonlyMap<string, WecomEndpoint> = new Map([
  ['/cgi-bin/gettoken', 'gettoken'],
  ['/cgi-bin/miniprogram/jscode2session', 'jscode2session'],
  ['/cgi-bin/user/get', 'user/get'],
  ['/cgi-bin/message/send', 'message/send'],
])
/** The one endpoint WeCom wants POSTed, with a JSON body. */
const POSTED: ReadonlySet<WecomEndpoint> = new Set(['message/send'])
/** message/send bodies are a few KiB; WeCom caps text messages at 2048 bytes. */
const MAX_POSTED_BODY = 64 * 1024
/** WeCom POSTs an event again after 5 s without `success`, three times (doc path/90930). */
const CALLBACK_RETRIES = 3
const CALLBACK_TIMEOUT = 5000
const DEFAULT_AGENT_ID = 1000002

const REQUEST_LOG_SIZE = 100
/**
 * Expired and revoked tokens are remembered this long so that they answer 42001 (or the
 * expireTokens errcode) rather than 40014; after that they are forgotten, which keeps the token
 * table bounded however often a test rotates tokens.
 */
const TOKEN_MEMORY_MS = 24 * 60 * 60 * 1000

const ERRMSG: Record<number, string> = {
  [-1]: 'system busy',
  0: 'ok',
  40001: 'invalid credential',
  40002: 'invalid grant_type',
  40008: 'invalid message type',
  40013: 'invalid corpid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40066: 'invalid url',
  41002: 'corpid missing',
  41004: 'corpsecret missing',
  41008: 'missing code',
  41009: 'missing userid',
  42001: 'access_token expired',
  43001: 'require GET request',
  43002: 'require POST method',
  47001: 'data format error',
  45009: 'api freq out of limit',
  45033: 'api concurrent out of limit',
  48002: 'api forbidden',
  60011: 'no privilege to access/modify contact/party/agent',
  60020: 'not allow to access from your ip',
  60111: 'userid not found',
}

/** Shaped like WeCom's messages, so that nobody is tempted to match on the text. */
function errmsgFor (errcode: number): string {
  if (errcode === 0) return 'ok'
  const text = ERRMSG[errcode] ?? 'simulated error'
  return `${text}, more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}`
}

function encrypt (
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
  return encrypt(sessionKey, data, appid, iv, Date.now())
}

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

interface CorpState {
  secret: string
  members: Map<string, SimulatedMember>
  sessionKeys: Map<string, string>
  agentId: number
  callback?: { config: SimulatedCallback, checked: boolean }
}

interface DeliveryState extends SimulatedDelivery {
  attempts: number
  acknowledged: boolean
}

interface TokenState {
  corpId: string
  appKey: string
  expiresAt: number
  revokedWith?: number
  revokedAt?: number
}

interface CodeState {
  corpId: string
  userid: string
  sessionKey: string
  expiresAt: number
}

interface QueuedFault {
  fault: SimulatedFault
  remaining: number
}

type Reply = Record<string, unknown>

function nonNegative (name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a finite number >= 0, got ${value}`)
  }
  return value
}

function noop (): void {}

function copyMember (member: SimulatedMember): SimulatedMember {
  if (typeof member.userid !== 'string' || member.userid === '') {
    throw new Error('a simulated member needs a non-empty userid')
  }
  return { ...member, department: member.department ? [...member.department] : undefined }
}

/** First occurrence wins for repeated keys, the way WeCom's CGI reads them. */
function parseQuery (search: string): Record<string, string> {
  const seen = new Map<string, string>()
  for (const [key, value] of new URLSearchParams(search)) {
    if (!seen.has(key)) seen.set(key, value)
  }
  // fromEntries defines own properties, so a '__proto__' parameter stays plain data.
  return Object.fromEntries(seen)
}

export async function createWecomSimulator (
  options: WecomSimulatorOptions = {}
): Promise<WecomSimulator> {
  const host = options.host ?? '127.0.0.1'
  const clock = options.now ?? Date.now
  let tokenTtlMs = nonNegative('tokenTtl', options.tokenTtl ?? 7200) * 1000
  const codeTtlMs = nonNegative('codeTtl', options.codeTtl ?? 300) * 1000
  const callbackRetryDelay = nonNegative('callbackRetryDelay', options.callbackRetryDelay ?? 5000)
  let latency = nonNegative('latency', options.latency ?? 0)
  let offset = 0
  const now = (): number => clock() + offset

  const corps = new Map<string, CorpState>()
  const tokens = new Map<string, TokenState>()
  /** The live token of each app, keyed by corpId and secret: two apps of a corp differ. */
  const appTokens = new Map<string, string>()
  // Insertion order follows expiry order (the TTL is fixed), which lets the sweep stop early.
  const codes = new Map<string, CodeState>()
  const faults = new Map<WecomEndpoint, QueuedFault[]>()
  const calls = { gettoken: 0, jscode2session: 0, 'user/get': 0 } as Record<WecomEndpoint, number>
  // Counted like the others, but not enumerable: a test comparing the login's three stays as it is.
  Object.defineProperty(calls, 'message/send', { value: 0, writable: true, enumerable: false })
  const deliveries: DeliveryState[] = []
  /** What each delivery sent first, for redeliver('same'). */
  const firstRequests = new WeakMap<SimulatedDelivery, { query: string, body: string }>()
  const messages: Array<{ corpId: string, body: Record<string, unknown> }> = []
  /** Aborts the callbacks' requests in flight when the simulator closes. */
  const outgoing = new AbortController()
  const requestLog: SimulatedRequest[] = []
  let requestCount = 0
  const timers = new Set<NodeJS.Timeout>()

  function corpOf (corpId: string): CorpState {
    const corp = corps.get(corpId)
    if (!corp) throw new Error(`WeCom simulator: unknown corp ${JSON.stringify(corpId)}`)
    return corp
  }

  function memberOf (corpId: string, userid: string): SimulatedMember {
    const member = corpOf(corpId).members.get(userid)
    if (!member) {
      throw new Error(
        `WeCom simulator: corp ${JSON.stringify(corpId)} has no member ${JSON.stringify(userid)}`
      )
    }
    return member
  }

  function addCorp (corp: SimulatedCorp): void {
    if (typeof corp.corpId !== 'string' || corp.corpId === '') {
      throw new Error('a simulated corp needs a non-empty corpId')
    }
    const members = new Map<string, SimulatedMember>()
    for (const member of corp.members ?? []) members.set(member.userid, copyMember(member))
    corps.set(corp.corpId, {
      secret: corp.secret,
      members,
      sessionKeys: new Map(),
      agentId: corp.agentId ?? DEFAULT_AGENT_ID,
      callback: corp.callback === undefined ? undefined : { config: { ...corp.callback }, checked: false }
    })
  }

  /** A signed, encrypted request to the corp's callback, as WeCom makes it. */
  function envelope (corpId: string, config: SimulatedCallback, plain: string, name: 'echostr' | 'Encrypt'): { query: string, body: string } {
    const encrypted = encryptCallbackMessage(config.encodingAESKey, plain, corpId)
    const timestamp = String(Math.floor(clock() / 1000))
    const nonce = randomBytes(8).toString('hex')
    const signed = { msg_signature: callbackSignature(config.token, timestamp, nonce, encrypted), timestamp, nonce }
    if (name === 'echostr') return { query: new URLSearchParams({ ...signed, echostr: encrypted }).toString(), body: '' }
    const agentId = String(corpOf(corpId).agentId)
    return {
      query: new URLSearchParams(signed).toString(),
      body: `<xml>${cdata('ToUserName', corpId)}${cdata('AgentID', agentId)}${cdata('Encrypt', encrypted)}</xml>`
    }
  }

  async function callCallback (url: string, request: { query: string, body: string }, method: 'GET' | 'POST'): Promise<CallbackAnswer> {
    const response = await fetch(`${url}${url.includes('?') ? '&' : '?'}${request.query}`, {
      method,
      headers: method === 'POST' ? { 'content-type': 'text/xml' } : {},
      body: method === 'POST' ? request.body : undefined,
      signal: AbortSignal.any([outgoing.signal, AbortSignal.timeout(CALLBACK_TIMEOUT)]),
    })
    return { status: response.status, body: await response.text() }
  }

  /** WeCom's URL check: the plain text of an encrypted echostr must come back. */
  async function checkUrl (corpId: string, config: SimulatedCallback): Promise<void> {
    const echo = randomBytes(9).toString('base64url')
    const answer = await callCallback(config.url, envelope(corpId, config, echo, 'echostr'), 'GET').catch(() => undefined)
    if (answer?.status !== 200 || answer.body !== echo) {
      throw new Error(`WeCom simulator: the callback URL of corp ${JSON.stringify(corpId)} failed WeCom's check (${answer === undefined ? 'no answer' : `HTTP ${answer.status}`})`)
    }
  }

  /** One POST of a delivery; without `success`, another after callbackRetryDelay, CALLBACK_RETRIES at most. */
  async function attempt (delivery: DeliveryState, url: string, request: { query: string, body: string }): Promise<void> {
    delivery.attempts += 1
    const answer = await callCallback(url, request, 'POST').catch(() => undefined)
    if (answer?.status === 200 && answer.body.trim() === 'success') {
      delivery.acknowledged = true
      return
    }
    if (delivery.attempts > CALLBACK_RETRIES || outgoing.signal.aborted) return
    const timer = setTimeout(() => {
      timers.delete(timer)
      attempt(delivery, url, request).catch(noop)
    }, callbackRetryDelay)
    timers.add(timer)
  }

  /** Sends an event to the corp's callback, if it has one; resolves after the first POST. */
  async function deliver (corpId: string, fields: Record<string, string | number>): Promise<DeliveryState | undefined> {
    const corp = corpOf(corpId)
    if (corp.callback === undefined) return undefined
    const event: Record<string, string> = { ToUserName: corpId, FromUserName: 'sys', CreateTime: String(Math.floor(clock() / 1000)), MsgType: 'event' }
    for (const [name, value] of Object.entries(fields)) event[name] = String(value)
    // CreateTime is a number in WeCom's XML; every other field is CDATA text.
    const xml = `<xml>${Object.entries(event).map(([name, value]) => name === 'CreateTime' ? `<${name}>${value}</${name}>` : cdata(name, value)).join('')}</xml>`
    const delivery: DeliveryState = { corpId, event, xml, attempts: 0, acknowledged: false }
    deliveries.push(delivery)
    const { config } = corp.callback
    if (!corp.callback.checked) {
      // As in WeCom, nothing is sent to a URL that fails the check (the next event checks again).
      if (!await checkUrl(corpId, config).then(() => true, () => false)) return delivery
      corp.callback.checked = true
    }
    const first = envelope(corpId, config, xml, 'Encrypt')
    firstRequests.set(delivery, first)
    await attempt(delivery, config.url, first)
    return delivery
  }

  function sweepCodes (at: number): void {
    for (const [code, state] of codes) {
      if (state.expiresAt > at) break
      codes.delete(code)
    }
  }

  function sweepTokens (at: number): void {
    for (const [token, state] of tokens) {
      const endedAt = state.revokedAt ?? state.expiresAt
      if (endedAt + TOKEN_MEMORY_MS <= at) tokens.delete(token)
    }
  }

  /** The token's state, or the errcode WeCom answers for it. */
  function checkToken (token: string | undefined): TokenState | number {
    const state = token === undefined ? undefined : tokens.get(token)
    if (!state) return 40014
    if (state.revokedWith !== undefined) return state.revokedWith
    if (state.expiresAt <= now()) return 42001
    return state
  }

  function getToken (query: Record<string, string>): Reply {
    const { corpid, corpsecret } = query
    if (!corpid) return { errcode: 41002 }
    if (!corpsecret) return { errcode: 41004 }
    const corp = corps.get(corpid)
    if (!corp) return { errcode: 40013 }
    if (corp.secret !== corpsecret) return { errcode: 40001 }
    const at = now()
    const appKey = `${corpid}\u0000${corpsecret}`
    const current = appTokens.get(appKey)
    const state = current === undefined ? undefined : tokens.get(current)
    // WeCom hands back the same token while it is valid; a token with under a second left is
    // renewed instead so that expires_in is never 0.
    if (current !== undefined && state && state.revokedWith === undefined) {
      const remaining = Math.floor((state.expiresAt - at) / 1000)
      if (remaining >= 1) return { errcode: 0, access_token: current, expires_in: remaining }
    }
    sweepTokens(at)
    // Random bytes only: a token must reveal nothing about the secret.
    const token = randomBytes(48).toString('base64url')
    tokens.set(token, { corpId: corpid, appKey, expiresAt: at + tokenTtlMs })
    appTokens.set(appKey, token)
    return { errcode: 0, access_token: token, expires_in: Math.floor(tokenTtlMs / 1000) }
  }

  function jscode2session (query: Record<string, string>): Reply {
    const token = checkToken(query.access_token)
    if (typeof token === 'number') return { errcode: token }
    const code = query.js_code
    if (!code) return { errcode: 41008 }
    if (query.grant_type !== 'authorization_code') return { errcode: 40002 }
    const state = codes.get(code)
    if (!state) return { errcode: 40029 }
    // Spent on first exchange, even when the token belongs to another corp: the caller learns
    // the right corpid and must get a fresh code.
    codes.delete(code)
    if (state.expiresAt <= now()) return { errcode: 40029 }
    return {
      errcode: 0,
      corpid: state.corpId,
      userid: state.userid,
      session_key: state.sessionKey,
    }
  }

  function getUser (query: Record<string, string>): Reply {
    const token = checkToken(query.access_token)
    if (typeof token === 'number') return { errcode: token }
    const userid = query.userid
    if (!userid) return { errcode: 41009 }
    const member = corps.get(token.corpId)?.members.get(userid)
    if (!member) return { errcode: 60111 }
    if (member.visible === false) return { errcode: 60011 }
    const reply: Reply = { errcode: 0, userid: member.userid }
    if (member.name !== undefined) reply.name = member.name
    if (member.department !== undefined) reply.department = [...member.department]
    if (member.position !== undefined) reply.position = member.position
    reply.status = member.status ?? 1
    return reply
  }

  function sendMessage (query: Record<string, string>, raw: string): Reply {
    const token = checkToken(query.access_token)
    if (typeof token === 'number') return { errcode: token }
    let body: unknown
    try {
      body = JSON.parse(raw)
    } catch {
      return { errcode: 47001 }
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return { errcode: 47001 }
    const message = body as Record<string, unknown>
    if (typeof message.msgtype !== 'string') return { errcode: 40008 }
    const members = corps.get(token.corpId)?.members
    const invalid = typeof message.touser === 'string' && message.touser !== '@all'
      ? message.touser.split('|').filter((userid) => !members?.has(userid))
      : []
    messages.push({ corpId: token.corpId, body: message })
    return { errcode: 0, invaliduser: invalid.join('|'), msgid: randomBytes(16).toString('base64url') }
  }

  const handlers: Record<WecomEndpoint, (query: Record<string, string>, body: string) => Reply> = {
    gettoken: getToken,
    jscode2session,
    'user/get': getUser,
    'message/send': sendMessage,
  }

  function send (res: ServerResponse, reply: Reply, trickle?: number): void {
    if (res.destroyed) return
    const errcode = reply.errcode as number
    // errcode and errmsg come first, as in WeCom's answers.
    const body = Buffer.from(JSON.stringify({ errcode, errmsg: errmsgFor(errcode), ...reply }))
    res.writeHead(200, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': body.length,
    })
    if (trickle === undefined) {
      res.end(body)
      return
    }
    let sent = 0
    const next = (): void => {
      if (res.destroyed) return
      res.write(body.subarray(sent, ++sent))
      if (sent >= body.length) {
        res.end()
        return
      }
      const timer = setTimeout(() => {
        timers.delete(timer)
        next()
      }, trickle)
      timers.add(timer)
    }
    next()
  }

  function takeFault (endpoint: WecomEndpoint): SimulatedFault | undefined {
    const queue = faults.get(endpoint)
    const head = queue?.[0]
    if (!queue || !head) return undefined
    head.remaining -= 1
    if (head.remaining <= 0) queue.shift()
    return head.fault
  }

  function answer (
    req: IncomingMessage,
    res: ServerResponse,
    entry: SimulatedRequest,
    arrived: number,
    body: string,
    fault: SimulatedFault | undefined
  ): void {
    const { endpoint, query } = entry
    if (fault === undefined || !('timeout' in fault)) entry.ms = Math.round(performance.now() - arrived)
    if (fault === undefined || 'delay' in fault || 'trickle' in fault) {
      const trickle = fault !== undefined && 'trickle' in fault ? fault.trickle : undefined
      const posted = POSTED.has(endpoint)
      const method = posted ? 'POST' : 'GET'
      const reply = req.method === method ? handlers[endpoint](query, body) : { errcode: posted ? 43002 : 43001 }
      entry.errcode = reply.errcode as number
      send(res, reply, trickle)
    } else if ('errcode' in fault) {
      entry.errcode = fault.errcode
      send(res, { errcode: fault.errcode, errmsg: fault.errmsg ?? errmsgFor(fault.errcode) })
    } else if ('drop' in fault) {
      req.socket.destroy()
    } else if ('malformed' in fault) {
      if (res.destroyed) return
      res.writeHead(200, { 'content-type': 'text/html; charset=UTF-8' })
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>')
    }
    // A timeout fault answers nothing: close() destroys the socket.
  }

  function onRequest (req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const mark = url.indexOf('?')
    const endpoint = PATHS.get(mark === -1 ? url : url.slice(0, mark))
    if (endpoint === undefined && options.fallback !== undefined) {
      options.fallback(req, res)
      return
    }
    if (endpoint === undefined || !POSTED.has(endpoint) || req.method !== 'POST') {
      // Any body is ignored but must be read, or the keep-alive connection stalls.
      req.resume()
      receive(req, res, endpoint, url, mark, '')
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_POSTED_BODY) chunks.push(chunk)
    })
    // A body past the limit reads as no JSON at all: 47001, as WeCom answers.
    req.on('end', () => receive(req, res, endpoint, url, mark, size <= MAX_POSTED_BODY ? Buffer.concat(chunks).toString('utf8') : ''))
  }

  function receive (req: IncomingMessage, res: ServerResponse, endpoint: WecomEndpoint | undefined, url: string, mark: number, body: string): void {
    if (endpoint === undefined) {
      send(res, { errcode: 40066 })
      return
    }
    const query = parseQuery(mark === -1 ? '' : url.slice(mark + 1))
    calls[endpoint] += 1
    const arrived = performance.now()
    const entry: SimulatedRequest = { id: ++requestCount, endpoint, query }
    requestLog.push(entry)
    if (requestLog.length > REQUEST_LOG_SIZE) requestLog.shift()
    // Taken on arrival, so concurrent calls consume faults in the order they came in.
    const fault = takeFault(endpoint)
    const wait = latency + (fault !== undefined && 'delay' in fault ? fault.delay : 0)
    if (wait <= 0) {
      answer(req, res, entry, arrived, body, fault)
      return
    }
    const timer = setTimeout(() => {
      timers.delete(timer)
      answer(req, res, entry, arrived, body, fault)
    }, wait)
    timers.add(timer)
  }

  for (const corp of options.corps ?? []) addCorp(corp)

  const server = createServer(onRequest)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  let closing: Promise<void> | undefined

  return {
    url,
    calls,
    resetCalls () {
      calls.gettoken = 0
      calls.jscode2session = 0
      calls['user/get'] = 0
      calls['message/send'] = 0
    },
    get requests () {
      // Copies: an entry still unanswered gets its errcode and ms later, in the log only.
      return requestLog.map((entry) => ({ ...entry }))
    },
    addCorp,
    setMember (corpId, member) {
      corpOf(corpId).members.set(member.userid, copyMember(member))
    },
    updateMember (corpId, userid, patch) {
      const member = memberOf(corpId, userid)
      if (patch.userid !== undefined && patch.userid !== userid) {
        throw new Error('updateMember cannot change a userid: remove the member and set a new one')
      }
      corpOf(corpId).members.set(userid, copyMember({ ...member, ...patch, userid }))
    },
    removeMember (corpId, userid) {
      memberOf(corpId, userid)
      const corp = corpOf(corpId)
      corp.members.delete(userid)
      corp.sessionKeys.delete(userid)
      return deliver(corpId, { Event: 'change_contact', ChangeType: 'delete_user', UserID: userid })
    },
    disableMember (corpId, userid) {
      const member = memberOf(corpId, userid)
      corpOf(corpId).members.set(userid, { ...member, status: 2 })
      return deliver(corpId, { Event: 'change_contact', ChangeType: 'update_user', UserID: userid, Status: 2 })
    },
    setVisible (corpId, userid, visible) {
      const member = memberOf(corpId, userid)
      corpOf(corpId).members.set(userid, { ...member, visible })
      // 成员关注及取消关注事件: sent by the member, to the app.
      return deliver(corpId, {
        FromUserName: userid, Event: visible ? 'subscribe' : 'unsubscribe', AgentID: corpOf(corpId).agentId
      })
    },
    async setCallback (corpId, callback) {
      const corp = corpOf(corpId)
      await checkUrl(corpId, callback)
      corp.callback = { config: { ...callback }, checked: true }
    },
    async sendEvent (corpId, fields) {
      const delivery = await deliver(corpId, fields)
      if (delivery === undefined) throw new Error(`WeCom simulator: corp ${JSON.stringify(corpId)} has no callback`)
      return delivery
    },
    get deliveries () {
      return deliveries.slice()
    },
    async redeliver (delivery, envelopeKind) {
      const first = firstRequests.get(delivery)
      const config = corps.get(delivery.corpId)?.callback?.config
      if (first === undefined || config === undefined) throw new Error('WeCom simulator: not a delivery this simulator sent')
      const request = envelopeKind === 'same' ? first : envelope(delivery.corpId, config, delivery.xml, 'Encrypt')
      return callCallback(config.url, request, 'POST')
    },
    get messages () {
      return messages.slice()
    },
    issueCode (corpId, userid) {
      // Members outside the visible range still get codes, as in WeCom; user/get refuses them.
      memberOf(corpId, userid)
      const at = now()
      sweepCodes(at)
      const code = randomBytes(24).toString('base64url')
      const sessionKey = randomBytes(16).toString('base64')
      codes.set(code, { corpId, userid, sessionKey, expiresAt: at + codeTtlMs })
      corpOf(corpId).sessionKeys.set(userid, sessionKey)
      return code
    },
    sessionKey (corpId, userid) {
      return corps.get(corpId)?.sessionKeys.get(userid)
    },
    encryptUserInfo (corpId, userid, data, appid) {
      memberOf(corpId, userid)
      const sessionKey = corpOf(corpId).sessionKeys.get(userid)
      if (sessionKey === undefined) {
        throw new Error(
          `WeCom simulator: member ${JSON.stringify(userid)} has no session_key yet; call issueCode first`
        )
      }
      // The watermark follows the simulator clock, so advance() ages it like everything else.
      return encrypt(sessionKey, data, appid, randomBytes(16), now())
    },
    setTokenTtl (seconds) {
      tokenTtlMs = nonNegative('tokenTtl', seconds) * 1000
    },
    expireTokens (corpId, errcode = 42001) {
      if (corpId !== undefined) corpOf(corpId)
      const at = now()
      for (const state of tokens.values()) {
        if (corpId !== undefined && state.corpId !== corpId) continue
        if (state.revokedWith !== undefined || state.expiresAt <= at) continue
        state.revokedWith = errcode
        state.revokedAt = at
        appTokens.delete(state.appKey)
      }
    },
    setLatency (ms) {
      latency = nonNegative('latency', ms)
    },
    inject (endpoint, fault, times = 1) {
      if (!Object.hasOwn(calls, endpoint)) {
        throw new Error(`WeCom simulator: unknown endpoint ${JSON.stringify(endpoint)}`)
      }
      if (!(times === Infinity || (Number.isInteger(times) && times >= 1))) {
        throw new Error(`inject times must be a positive integer or Infinity, got ${times}`)
      }
      if ('delay' in fault) nonNegative('delay', fault.delay)
      if ('trickle' in fault) nonNegative('trickle', fault.trickle)
      const queue = faults.get(endpoint) ?? []
      queue.push({ fault: { ...fault }, remaining: times })
      faults.set(endpoint, queue)
    },
    clearFaults () {
      faults.clear()
    },
    advance (ms) {
      offset += nonNegative('advance', ms)
    },
    close () {
      closing ??= new Promise<void>((resolve) => {
        outgoing.abort()
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        server.close(() => resolve())
        // Held 'timeout' requests and idle keep-alive sockets would otherwise keep close() waiting.
        server.closeAllConnections()
      })
      return closing
    },
  }
}
