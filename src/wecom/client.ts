import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, ProxyAgent, request, type Dispatcher } from 'undici'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.js'
import { Budget } from './budget.js'
import type { Deadline } from './deadline.js'
import { describeErrcode, type ErrcodeClass } from './errcodes.js'
import { Refusals, type RefusalKind } from './refusals.js'

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
 * The call did not produce a usable answer. `unreachable`: connection failure or a non-200
 * status, so WeCom may never have seen it; `timeout`: the request's deadline passed during the
 * call; `malformed`: an answer that does not parse or lacks its fields.
 */
export class WecomTransportError extends Error {
  readonly kind: 'unreachable' | 'timeout' | 'malformed'
  readonly endpoint: WecomEndpoint

  constructor (endpoint: WecomEndpoint, kind: WecomTransportError['kind'], detail: string) {
    super(`${endpoint} ${kind === 'malformed' ? 'gave an unusable answer' : kind === 'timeout' ? 'did not answer in time' : 'could not be reached'}: ${detail}`)
    this.name = 'WecomTransportError'
    this.endpoint = endpoint
    this.kind = kind
  }
}

/**
 * Refused here without calling WeCom: the breaker is open (`breaker`), WeCom's refusal or rate
 * limit is remembered (`refused`, `paused`), gettoken is backing off (`backoff`), or the outbound
 * budget is spent (`budget`).
 */
export class WecomFailFastError extends Error {
  readonly reason: 'breaker' | 'budget' | RefusalKind
  readonly endpoint: WecomEndpoint
  /** Milliseconds until a call may go again. */
  readonly retryAfter: number
  /** What WeCom said when the refusal was remembered. */
  readonly refusal?: WecomApiError | WecomTransportError

  constructor (endpoint: WecomEndpoint, reason: WecomFailFastError['reason'], retryAfter: number, refusal?: WecomApiError | WecomTransportError) {
    super(`${endpoint} not called (${reason}): ${refusal?.message ?? 'retry later'}`)
    this.name = 'WecomFailFastError'
    this.endpoint = endpoint
    this.reason = reason
    this.retryAfter = retryAfter
    if (refusal !== undefined) this.refusal = refusal
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

/** Who a call is made for, and until when. */
export interface CallScope {
  deadline: Deadline
  corpId: string
  /** The app (corpId + secret) whose token the call uses, as a key: refusals are remembered per app. */
  app: string
  /** The token was fetched for this very retry: a token errcode now refuses the app itself. */
  freshToken?: boolean
}

/** The slice of a pino logger the client writes its once-per-change lines to. */
export interface WecomLogger {
  debug (fields: object, message: string): void
  info (fields: object, message: string): void
  warn (fields: object, message: string): void
  error (fields: object, message: string): void
}

/** How long WeCom's refusals are remembered, in ms (see errcodes.ts for which ones). */
export interface RefusalWindows {
  config: number
  frequency: number
  concurrency: number
}

export interface WecomClientOptions {
  baseUrl: string
  /** Milliseconds: the connect timeout, and undici's own (coarse) bounds behind each deadline. */
  timeout: number
  proxy?: string
  dispatcher?: Dispatcher
  /** First backoff before retrying errcode -1, doubled on each retry. */
  retryDelay?: number
  breaker: BreakerOptions | false
  refusals: RefusalWindows
  /** Calls a minute per corp and endpoint, or false for none. */
  budget: number | false
  log: WecomLogger
}

const MAX_RETRIES = 3
/** Weight of the newest round trip in the running estimate of an endpoint's duration. */
const EWMA_WEIGHT = 0.2

type Answer = Record<string, unknown>

/**
 * HTTP to WeCom's endpoints. Knows nothing of Fastify; turns errcodes into typed errors, bounds
 * every call by its request's deadline, and fails fast (breaker, remembered refusals, budget) on
 * WeCom's bad days.
 */
export class WecomClient {
  readonly #origin: string
  readonly #basePath: string
  readonly #timeout: number
  readonly #retryDelay: number
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #breaker: Breaker | undefined
  readonly #refusals = new Refusals<WecomApiError | WecomTransportError>()
  readonly #windows: RefusalWindows
  readonly #budget: Budget | undefined
  readonly #log: WecomLogger
  readonly #average: Record<WecomEndpoint, number> = { gettoken: 0, jscode2session: 0, 'user/get': 0 }
  readonly #last: Record<WecomEndpoint, number> = { gettoken: 0, jscode2session: 0, 'user/get': 0 }

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
    this.#log = options.log
    this.#windows = options.refusals
    if (options.budget !== false) this.#budget = new Budget(options.budget)
    if (options.breaker !== false) {
      const { coolDown } = options.breaker
      this.#breaker = new Breaker(options.breaker, (state) => this.#breakerChanged(state, coolDown))
    }
  }

  /** The breaker's state, `closed` when it is turned off. */
  get breakerState (): BreakerState {
    return this.#breaker?.state ?? 'closed'
  }

  /**
   * Milliseconds a call to `endpoint` is expected to take: the running average of its round
   * trips, or the last one when slower (WeCom slowing down shows there first).
   */
  expected (endpoint: WecomEndpoint): number {
    return Math.max(this.#average[endpoint], this.#last[endpoint])
  }

  async getToken (secret: string, scope: CallScope): Promise<AccessToken> {
    const key = appKey(scope, 'gettoken')
    try {
      const answer = await this.#call('gettoken', { corpid: scope.corpId, corpsecret: secret }, scope)
      const { access_token: accessToken, expires_in: expiresIn } = answer
      if (typeof accessToken !== 'string' || accessToken === '' || typeof expiresIn !== 'number' || expiresIn <= 0) {
        throw new WecomTransportError('gettoken', 'malformed', 'access_token or expires_in missing')
      }
      this.#refusals.succeeded(key)
      return { accessToken, expiresIn }
    } catch (error) {
      // No token for a passing reason (transport, -1): the next try waits, 1 s and doubling, so a
      // login rate never turns into a gettoken rate (2,000 failed an hour block the IP, doc 90454).
      if (error instanceof WecomTransportError || (error instanceof WecomApiError && error.class === 'retry')) {
        const delay = this.#refusals.backOff(key, error)
        this.#log.warn({ corpId: scope.corpId, endpoint: 'gettoken' }, `wecom: no access token (${error.message}); next gettoken for this app in ${seconds(delay)} s at the earliest`)
      }
      throw error
    }
  }

  async code2Session (accessToken: string, code: string, scope: CallScope): Promise<CodeSession> {
    const answer = await this.#call('jscode2session', {
      access_token: accessToken, js_code: code, grant_type: 'authorization_code'
    }, scope)
    const { corpid, userid, session_key: sessionKey } = answer
    if (typeof corpid !== 'string' || corpid === '' || typeof userid !== 'string' || userid === '' ||
        typeof sessionKey !== 'string') {
      throw new WecomTransportError('jscode2session', 'malformed', 'corpid, userid or session_key missing')
    }
    return { corpid, userid, sessionKey }
  }

  async getUser (accessToken: string, userid: string, scope: CallScope): Promise<WecomUserInfo> {
    const answer = await this.#call('user/get', { access_token: accessToken, userid }, scope)
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

  async #call (endpoint: WecomEndpoint, params: Record<string, string>, scope: CallScope): Promise<Answer> {
    // URLSearchParams encodes each value whole: a code like `a&userid=x` stays one value.
    const url = `${this.#origin}${this.#basePath}${paths[endpoint]}?${new URLSearchParams(params).toString()}`
    for (let attempt = 0; ; attempt++) {
      this.#admit(endpoint, scope)
      const answer = await this.#get(endpoint, url, scope.deadline)
      const errcode = answer.errcode ?? 0
      if (errcode === 0) return answer
      if (typeof errcode !== 'number') throw new WecomTransportError(endpoint, 'malformed', 'errcode is not a number')
      const error = new WecomApiError(endpoint, errcode, answer.errmsg)
      const delay = this.#retryDelay * 2 ** attempt
      // A retry is not started when the time left could not cover it: the answer would come too late.
      if (errcode === -1 && attempt < MAX_RETRIES && scope.deadline.remaining() > delay + this.expected(endpoint)) {
        await sleep(delay, undefined, { signal: scope.deadline.signal }).catch(() => {
          throw new WecomTransportError(endpoint, 'timeout', 'deadline passed while waiting to retry -1')
        })
        continue
      }
      this.#remember(endpoint, scope, error)
      throw error
    }
  }

  /** Throws WecomFailFastError when the call must not go now; otherwise takes it from the budget. */
  #admit (endpoint: WecomEndpoint, scope: CallScope): void {
    const byCorp = corpKey(scope, endpoint)
    const refusal = this.#refusals.check(appKey(scope, endpoint)) ?? this.#refusals.check(byCorp)
    if (refusal !== undefined) {
      throw new WecomFailFastError(endpoint, refusal.kind, refusal.until - Date.now(), refusal.error)
    }
    const budgetWait = this.#budget?.wait(byCorp, (spent) => this.#budgetChanged(scope, endpoint, spent)) ?? 0
    if (budgetWait > 0) throw new WecomFailFastError(endpoint, 'budget', budgetWait)
    // Last: an open breaker lets its probe through here, and a probe must then be made.
    const breakerWait = this.#breaker?.admit() ?? 0
    if (breakerWait > 0) throw new WecomFailFastError(endpoint, 'breaker', breakerWait)
    this.#budget?.take(byCorp)
  }

  #remember (endpoint: WecomEndpoint, scope: CallScope, error: WecomApiError): void {
    const info = describeErrcode(error.errcode)
    const fields = { corpId: scope.corpId, endpoint, errcode: error.errcode }
    if (error.class === 'limited') {
      const window = error.errcode === 45033 ? this.#windows.concurrency : this.#windows.frequency
      if (this.#refusals.remember(corpKey(scope, endpoint), 'paused', error, window)) {
        this.#log.warn(fields, `wecom: ${endpoint} answered ${error.errcode} (${info.explanation}): no ${endpoint} call for this corp for ${seconds(window)} s, logins answer 503 meanwhile`)
      }
      return
    }
    const refusesApp = info.server === true ||
      (endpoint === 'gettoken' && (error.class === 'config' || error.class === 'token')) ||
      (error.class === 'token' && scope.freshToken === true)
    if (refusesApp && this.#refusals.remember(appKey(scope, endpoint), 'refused', error, this.#windows.config)) {
      this.#log.error(fields, `wecom: ${endpoint} refused this app: ${info.explanation} (configuration error: retrying will not help). Logins answer 502 without calling WeCom for ${seconds(this.#windows.config)} s, then try again`)
    }
  }

  #breakerChanged (state: BreakerState, coolDown: number): void {
    if (state === 'open') {
      this.#log.warn({ state }, `wecom: WeCom is not answering; breaker open, WeCom calls fail fast (503) for ${seconds(coolDown)} s, then one call probes`)
    } else if (state === 'closed') {
      this.#log.info({ state }, 'wecom: WeCom answers again; breaker closed')
    }
  }

  #budgetChanged (scope: CallScope, endpoint: WecomEndpoint, spent: boolean): void {
    const fields = { corpId: scope.corpId, endpoint }
    if (spent) this.#log.warn(fields, `wecom: outbound budget (api.budget) for ${endpoint} spent; answering 503 without calling WeCom until it refills`)
    else this.#log.info(fields, `wecom: outbound budget for ${endpoint} available again`)
  }

  /** One HTTP exchange under the deadline, reported to the breaker. */
  async #get (endpoint: WecomEndpoint, url: string, deadline: Deadline): Promise<Answer> {
    const started = Date.now()
    try {
      const answer = await this.#exchange(endpoint, url, deadline.signal)
      this.#breaker?.success()
      const took = Date.now() - started
      this.#last[endpoint] = took
      this.#average[endpoint] += (took - this.#average[endpoint]) * EWMA_WEIGHT
      return answer
    } catch (error) {
      this.#breaker?.failure(started)
      if (deadline.expired) throw new WecomTransportError(endpoint, 'timeout', `after ${Date.now() - started} ms`)
      throw error
    }
  }

  async #exchange (endpoint: WecomEndpoint, url: string, signal: AbortSignal): Promise<Answer> {
    let response: Dispatcher.ResponseData
    try {
      response = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        signal,
        // Behind the deadline's precise timer, undici's own (coarse) ones only as a backstop.
        headersTimeout: this.#timeout,
        bodyTimeout: this.#timeout
      })
    } catch (error) {
      // The cause is named by its class only: undici messages can carry the URL, and so the token.
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (response.statusCode !== 200) {
      await response.body.dump().catch(noop)
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

function appKey (scope: CallScope, endpoint: WecomEndpoint): string {
  return `app ${scope.app} ${endpoint}`
}

function corpKey (scope: CallScope, endpoint: WecomEndpoint): string {
  return `corp ${scope.corpId} ${endpoint}`
}

function seconds (ms: number): number {
  return Math.ceil(ms / 1000)
}

function errorName (error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${error.name} (${code})` : error.name
  }
  return 'unknown error'
}

function noop (): void {}
