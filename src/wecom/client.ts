import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, ProxyAgent, request, type Dispatcher } from 'undici'
import { describeErrcode, type ErrcodeClass } from './errcodes.js'

export type WecomEndpoint = 'gettoken' | 'jscode2session' | 'user/get'

const paths: Record<WecomEndpoint, string> = {
  gettoken: '/cgi-bin/gettoken',
  jscode2session: '/cgi-bin/miniprogram/jscode2session',
  'user/get': '/cgi-bin/user/get'
}

/** WeCom answered with a non-zero errcode. Carries no URL, token, secret or code. */
export class WecomApiError extends Error {
  readonly errcode: number
  readonly class: ErrcodeClass
  readonly endpoint: WecomEndpoint
  /** WeCom's request id from errmsg ("hint: [...]"), for WeCom support. */
  readonly hint?: string

  constructor (endpoint: WecomEndpoint, errcode: number, errmsg: unknown) {
    const info = describeErrcode(errcode)
    super(`${endpoint} answered errcode ${errcode}: ${info.explanation}`)
    this.name = 'WecomApiError'
    this.endpoint = endpoint
    this.errcode = errcode
    this.class = info.class
    this.hint = typeof errmsg === 'string' ? /hint: \[([\w-]+)\]/.exec(errmsg)?.[1] : undefined
  }
}

/**
 * The call did not produce a usable answer. `unreachable`: timeout, connection failure or a
 * non-200 status, so WeCom may never have seen it; `malformed`: an answer that does not parse
 * or lacks its fields.
 */
export class WecomTransportError extends Error {
  readonly kind: 'unreachable' | 'malformed'
  readonly endpoint: WecomEndpoint

  constructor (endpoint: WecomEndpoint, kind: 'unreachable' | 'malformed', detail: string) {
    super(`${endpoint} ${kind === 'malformed' ? 'gave an unusable answer' : 'could not be reached'}: ${detail}`)
    this.name = 'WecomTransportError'
    this.endpoint = endpoint
    this.kind = kind
  }
}

export interface AccessToken { accessToken: string, expiresIn: number }
export interface CodeSession { corpid: string, userid: string, sessionKey: string }
export interface WecomUserInfo {
  userid: string
  name?: string
  department?: number[]
  position?: string
  status?: number
}

export interface WecomClientOptions {
  baseUrl: string
  /** Milliseconds for one call, connection included. */
  timeout: number
  proxy?: string
  dispatcher?: Dispatcher
  /** First backoff before retrying errcode -1, doubled on each retry. */
  retryDelay?: number
}

const MAX_RETRIES = 3

type Answer = Record<string, unknown>

/** HTTP to WeCom's three endpoints. Knows nothing of Fastify; turns errcodes into typed errors. */
export class WecomClient {
  readonly #origin: string
  readonly #basePath: string
  readonly #timeout: number
  readonly #retryDelay: number
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean

  constructor (options: WecomClientOptions) {
    const base = new URL(options.baseUrl)
    this.#origin = base.origin
    this.#basePath = base.pathname.replace(/\/+$/, '')
    this.#timeout = options.timeout
    this.#retryDelay = options.retryDelay ?? 50
    this.#ownsDispatcher = options.dispatcher === undefined
    // One keep-alive pool for every call: a TLS handshake per login would cost more than the call.
    this.#dispatcher = options.dispatcher ??
      (options.proxy !== undefined
        ? new ProxyAgent({ uri: options.proxy, connect: { timeout: options.timeout } })
        : new Pool(this.#origin, { connections: 64, pipelining: 1, connect: { timeout: options.timeout } }))
  }

  async getToken (corpId: string, secret: string): Promise<AccessToken> {
    const answer = await this.#call('gettoken', { corpid: corpId, corpsecret: secret })
    const { access_token: accessToken, expires_in: expiresIn } = answer
    if (typeof accessToken !== 'string' || accessToken === '' || typeof expiresIn !== 'number' || expiresIn <= 0) {
      throw new WecomTransportError('gettoken', 'malformed', 'access_token or expires_in missing')
    }
    return { accessToken, expiresIn }
  }

  async code2Session (accessToken: string, code: string): Promise<CodeSession> {
    const answer = await this.#call('jscode2session', {
      access_token: accessToken, js_code: code, grant_type: 'authorization_code'
    })
    const { corpid, userid, session_key: sessionKey } = answer
    if (typeof corpid !== 'string' || corpid === '' || typeof userid !== 'string' || userid === '' ||
        typeof sessionKey !== 'string') {
      throw new WecomTransportError('jscode2session', 'malformed', 'corpid, userid or session_key missing')
    }
    return { corpid, userid, sessionKey }
  }

  async getUser (accessToken: string, userid: string): Promise<WecomUserInfo> {
    const answer = await this.#call('user/get', { access_token: accessToken, userid })
    if (answer.userid !== userid) {
      throw new WecomTransportError('user/get', 'malformed', 'userid missing or not the one asked for')
    }
    const user: WecomUserInfo = { userid }
    if (typeof answer.name === 'string') user.name = answer.name
    if (Array.isArray(answer.department) && answer.department.every((d) => typeof d === 'number')) {
      user.department = answer.department
    }
    if (typeof answer.position === 'string' && answer.position !== '') user.position = answer.position
    if (typeof answer.status === 'number') user.status = answer.status
    return user
  }

  async close (): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  async #call (endpoint: WecomEndpoint, params: Record<string, string>): Promise<Answer> {
    // URLSearchParams encodes each value whole: a code like `a&userid=x` stays one value.
    const url = `${this.#origin}${this.#basePath}${paths[endpoint]}?${new URLSearchParams(params).toString()}`
    for (let attempt = 0; ; attempt++) {
      const answer = await this.#get(endpoint, url)
      const errcode = answer.errcode ?? 0
      if (errcode === 0) return answer
      if (typeof errcode !== 'number') throw new WecomTransportError(endpoint, 'malformed', 'errcode is not a number')
      if (errcode !== -1 || attempt === MAX_RETRIES) throw new WecomApiError(endpoint, errcode, answer.errmsg)
      await sleep(this.#retryDelay * 2 ** attempt)
    }
  }

  async #get (endpoint: WecomEndpoint, url: string): Promise<Answer> {
    let response: Dispatcher.ResponseData
    try {
      // undici's own timers rather than an AbortSignal per call: the same bound (connect, then
      // headers, then the body, each within the timeout), without a timer and a signal per call.
      response = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeout,
        bodyTimeout: this.#timeout
      })
    } catch (error) {
      // The cause is named by its class only: undici messages can carry the URL, and so the token.
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (response.statusCode !== 200) {
      await response.body.dump()
      throw new WecomTransportError(endpoint, 'unreachable', `HTTP ${response.statusCode}`)
    }
    let answer: unknown
    try {
      answer = await response.body.json()
    } catch (error) {
      if (error instanceof SyntaxError) throw new WecomTransportError(endpoint, 'malformed', 'not JSON')
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      throw new WecomTransportError(endpoint, 'malformed', 'not a JSON object')
    }
    return answer as Answer
  }
}

function errorName (error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${error.name} (${code})` : error.name
  }
  return 'unknown error'
}
