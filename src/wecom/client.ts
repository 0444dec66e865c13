import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, ProxyAgent, request, type Dispatcher } from 'undici'
import { createTelemetry, type Telemetry } from '../telemetry.js'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.js'
import { Budget } from './budget.js'
import type { Deadline } from './deadline.js'
import { describeErrcode, type ErrcodeClass } from './errcodes.js'
import { FIRST_BACKOFF, Refusals, type RefusalKind } from './refusals.js'

/**
 * A WeCom API as breakers, refusals, budgets and log lines name it: the path under /cgi-bin/
 * (`message/send`), and for the login's three their short names. A string, since `api()` reaches
 * any path: each path gets its own breaker and budget, like the login's.
 */
export type WecomEndpoint = string
export type LoginEndpoint = 'gettoken' | 'jscode2session' | 'user/get'

const loginPaths: Record<LoginEndpoint, string> = {
  gettoken: '/cgi-bin/gettoken',
  jscode2session: '/cgi-bin/miniprogram/jscode2session',
  'user/get': '/cgi-bin/user/get'
}
const byPath = new Map(Object.entries(loginPaths).map(([endpoint, path]) => [path, endpoint]))
const CGI_BIN = '/cgi-bin/'
/** WeCom's paths: /cgi-bin/ and words joined by '/' (no '..', no query, no host), bounded. */
const API_PATH = /^\/cgi-bin(\/[A-Za-z0-9_]{1,64}){1,6}$/

/**
 * The endpoint of a path under /cgi-bin/, or undefined for a path that is not one: a login
 * endpoint reached through `api()` shares the login's breaker and budget.
 */
export function endpointOf (path: string): WecomEndpoint | undefined {
  if (!API_PATH.test(path)) return undefined
  return byPath.get(path) ?? path.slice(CGI_BIN.length)
}

function pathOf (endpoint: WecomEndpoint): string {
  return loginPaths[endpoint as LoginEndpoint] ?? CGI_BIN + endpoint
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
  /** Spans and metrics of each exchange and breaker change; no-ops when absent. */
  telemetry?: Pick<Telemetry, 'call' | 'breakerChanged'>
}

const MAX_RETRIES = 3
/** The login's answers are a few hundred bytes; a body past this is not WeCom's and is not read on. */
const MAX_BODY = 64 * 1024
/** Other APIs list members or departments: a large corp's answer runs to megabytes. */
const MAX_API_BODY = 16 * 1024 * 1024
/** Weight of the newest round trip in the running estimate of an endpoint's duration. */
const EWMA_WEIGHT = 0.2

type Answer = Record<string, unknown>

/** What one call sends: the query (beside the token), and for a POST its JSON body. */
interface Outgoing { query: Record<string, string>, body?: string, maxBody?: number }

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
  /** Per endpoint of the origin: a dead user/get must not hide behind a living jscode2session. */
  readonly #breakers = new Map<WecomEndpoint, Breaker>()
  readonly #breakerOptions: BreakerOptions | false
  /** What each failing endpoint was last logged failing with: one line per change, not per call. */
  readonly #failing = new Map<WecomEndpoint, string>()
  readonly #refusals = new Refusals<WecomApiError | WecomTransportError>()
  readonly #windows: RefusalWindows
  readonly #budget: Budget | undefined
  readonly #log: WecomLogger
  readonly #telemetry: Pick<Telemetry, 'call' | 'breakerChanged'>
  readonly #average = new Map<WecomEndpoint, number>()
  readonly #last = new Map<WecomEndpoint, number>()

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
    this.#telemetry = options.telemetry ?? createTelemetry()
    this.#windows = options.refusals
    if (options.budget !== false) this.#budget = new Budget(options.budget)
    this.#breakerOptions = options.breaker
  }

  /**
   * Throws WecomFailFastError when one of `endpoints` is refused, paused or behind an open breaker
   * for this scope, spending nothing: a login checks its later steps before jscode2session spends
   * the member's single-use code.
   */
  precheck (endpoints: readonly WecomEndpoint[], scope: Pick<CallScope, 'corpId' | 'app'>): void {
    for (const endpoint of endpoints) {
      const refusal = this.#refusals.check(appKey(scope, endpoint)) ?? this.#refusals.check(corpKey(scope, endpoint))
      if (refusal !== undefined) throw new WecomFailFastError(endpoint, refusal.kind, refusal.until - Date.now(), refusal.error)
      const open = this.#breakers.get(endpoint)?.openFor() ?? 0
      if (open > 0) throw new WecomFailFastError(endpoint, 'breaker', open)
    }
  }

  /**
   * Milliseconds a call to `endpoint` is expected to take: the running average of its round
   * trips, or the last one when slower (WeCom slowing down shows there first).
   */
  expected (endpoint: WecomEndpoint): number {
    return Math.max(this.#average.get(endpoint) ?? 0, this.#last.get(endpoint) ?? 0)
  }

  async getToken (secret: string, scope: CallScope): Promise<AccessToken> {
    const key = appKey(scope, 'gettoken')
    try {
      const answer = await this.#call('gettoken', { query: { corpid: scope.corpId, corpsecret: secret } }, scope)
      const { access_token: accessToken, expires_in: expiresIn } = answer
      // A token goes into every later query string: one of absurd length is not WeCom's.
      if (typeof accessToken !== 'string' || accessToken === '' || accessToken.length > 512 || typeof expiresIn !== 'number' || expiresIn <= 0) {
        throw new WecomTransportError('gettoken', 'malformed', 'access_token or expires_in missing')
      }
      this.#refusals.succeeded(key)
      return { accessToken, expiresIn }
    } catch (error) {
      // No token for a passing reason (transport, -1): the next try waits, 1 s and doubling, so a
      // login rate never turns into a gettoken rate (2,000 failed an hour block the IP, doc 90454).
      if (error instanceof WecomTransportError || (error instanceof WecomApiError && error.class === 'retry')) {
        const delay = this.#refusals.backOff(key, error)
        // Said when the back-off starts; its doublings are the same outage.
        this.#log[delay === FIRST_BACKOFF ? 'warn' : 'debug']({ corpId: scope.corpId, endpoint: 'gettoken' },
          `wecom: no access token (${error.message}); next gettoken for this app in ${seconds(delay)} s at the earliest, doubling while it lasts`)
      }
      throw error
    }
  }

  async code2Session (accessToken: string, code: string, scope: CallScope): Promise<CodeSession> {
    const answer = await this.#call('jscode2session', {
      query: { access_token: accessToken, js_code: code, grant_type: 'authorization_code' }
    }, scope)
    const { corpid, userid, session_key: sessionKey } = answer
    if (typeof corpid !== 'string' || corpid === '' || typeof userid !== 'string' || userid === '' ||
        typeof sessionKey !== 'string') {
      throw new WecomTransportError('jscode2session', 'malformed', 'corpid, userid or session_key missing')
    }
    return { corpid, userid, sessionKey }
  }

  async getUser (accessToken: string, userid: string, scope: CallScope): Promise<WecomUserInfo> {
    const answer = await this.#call('user/get', { query: { access_token: accessToken, userid } }, scope)
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

  /**
   * Any WeCom API (see endpointOf) on `accessToken`: a GET with `query`, or with `body` a POST of
   * its JSON. The parsed answer on errcode 0; the login's rules otherwise (typed errors, -1
   * retried, breaker, refusals, budget, the scope's deadline).
   */
  async call (endpoint: WecomEndpoint, accessToken: string, request: { query?: Record<string, string>, body?: unknown }, scope: CallScope): Promise<Answer> {
    return this.#call(endpoint, {
      // The token last: a query naming access_token cannot replace it.
      query: { ...request.query, access_token: accessToken },
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      maxBody: MAX_API_BODY
    }, scope)
  }

  async close (): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  async #call (endpoint: WecomEndpoint, outgoing: Outgoing, scope: CallScope): Promise<Answer> {
    // URLSearchParams encodes each value whole: a code like `a&userid=x` stays one value.
    const url = `${this.#origin}${this.#basePath}${pathOf(endpoint)}?${new URLSearchParams(outgoing.query).toString()}`
    for (let attempt = 0; ; attempt++) {
      this.#admit(endpoint, scope)
      const answer = await this.#send(endpoint, url, outgoing, scope)
      const errcode = answer.errcode ?? 0
      if (errcode === 0) {
        this.#answered(endpoint)
        return answer
      }
      if (typeof errcode !== 'number') throw this.#failed(endpoint, scope, new WecomTransportError(endpoint, 'malformed', 'errcode is not a number'))
      const error = new WecomApiError(endpoint, errcode, answer.errmsg)
      const delay = this.#retryDelay * 2 ** attempt
      // A retry is not started when the time left could not cover it: the answer would come too late.
      if (errcode === -1 && attempt < MAX_RETRIES && scope.deadline.remaining() > delay + this.expected(endpoint)) {
        await sleep(delay, undefined, { signal: scope.deadline.signal }).catch(() => {
          throw new WecomTransportError(endpoint, 'timeout', 'deadline passed while waiting to retry -1')
        })
        continue
      }
      throw this.#failed(endpoint, scope, error)
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
    const breakerWait = this.#breaker(endpoint)?.admit() ?? 0
    if (breakerWait > 0) throw new WecomFailFastError(endpoint, 'breaker', breakerWait)
    this.#budget?.take(byCorp)
  }

  /**
   * What a failed call throws, after remembering what is to be remembered: the window's fail-fast
   * error when the failure opened one (so that its Retry-After is the window's), else the failure.
   * Each cause is logged once per change: the first failure of an endpoint with it, not every call.
   */
  #failed (endpoint: WecomEndpoint, scope: CallScope, error: WecomApiError | WecomTransportError): Error {
    if (error instanceof WecomTransportError) {
      const open = this.#breakers.get(endpoint)?.openFor() ?? 0
      if (open > 0) return new WecomFailFastError(endpoint, 'breaker', open, error)
      this.#note(endpoint, error.kind, error.kind === 'malformed' ? 'error' : 'warn', { corpId: scope.corpId, endpoint }, `wecom: ${error.message}`)
      return error
    }
    const info = describeErrcode(error.errcode)
    const fields = { corpId: scope.corpId, endpoint, errcode: error.errcode }
    if (error.class === 'limited') {
      const window = error.errcode === 45033 ? this.#windows.concurrency : this.#windows.frequency
      if (this.#refusals.remember(corpKey(scope, endpoint), 'paused', error, window)) {
        this.#log.warn(fields, `wecom: ${endpoint} answered ${error.errcode} (${info.explanation}): no ${endpoint} call for this corp for ${seconds(window)} s, logins answer 503 meanwhile`)
      }
      return new WecomFailFastError(endpoint, 'paused', window, error)
    }
    const refusesApp = (info.server === true && error.class === 'config') ||
      (endpoint === 'gettoken' && (error.class === 'config' || error.class === 'token')) ||
      (error.class === 'token' && scope.freshToken === true)
    if (refusesApp) {
      const window = this.#windows.config
      if (this.#refusals.remember(appKey(scope, endpoint), 'refused', error, window)) {
        this.#log.error(fields, `wecom: ${endpoint} refused this app: ${info.explanation} (errcode ${error.errcode}, a configuration error: retrying will not help). Logins answer 502 without calling WeCom for ${seconds(window)} s, then try again`)
      }
      return new WecomFailFastError(endpoint, 'refused', window, error)
    }
    // A stale token is refreshed by the caller, a bad code or a member out of range is the client's
    // own: neither says anything about WeCom's health.
    if (error.class === 'config' || error.class === 'retry') {
      const level = error.class === 'config' ? 'error' : 'warn'
      const hint = error.class === 'config' ? ' (configuration error: retrying will not help)' : ''
      this.#note(endpoint, String(error.errcode), level, { ...fields, hint: error.hint }, `wecom: ${error.message}${hint}`)
    }
    return error
  }

  #note (endpoint: WecomEndpoint, cause: string, level: 'warn' | 'error', fields: object, message: string): void {
    const repeated = this.#failing.get(endpoint) === cause
    this.#failing.set(endpoint, cause)
    this.#log[repeated ? 'debug' : level](fields, repeated ? message : `${message}; said once until ${endpoint} answers again or fails otherwise`)
  }

  #answered (endpoint: WecomEndpoint): void {
    if (this.#failing.delete(endpoint)) this.#log.info({ endpoint }, `wecom: ${endpoint} answers again`)
  }

  /** The endpoint's breaker, made on its first call; undefined with `api.breaker: false`. */
  #breaker (endpoint: WecomEndpoint): Breaker | undefined {
    const options = this.#breakerOptions
    if (options === false) return undefined
    let breaker = this.#breakers.get(endpoint)
    if (breaker === undefined) {
      breaker = new Breaker(options, (state) => this.#breakerChanged(endpoint, state, options.coolDown))
      this.#breakers.set(endpoint, breaker)
    }
    return breaker
  }

  #breakerChanged (endpoint: WecomEndpoint, state: BreakerState, coolDown: number): void {
    this.#telemetry.breakerChanged(endpoint, state)
    if (state === 'open') {
      this.#log.warn({ endpoint, state }, `wecom: ${endpoint} is not answering; breaker open, ${endpoint} calls fail fast (503) for ${seconds(coolDown)} s, then one call probes`)
    } else if (state === 'closed') {
      this.#log.info({ endpoint, state }, `wecom: ${endpoint} answers again; breaker closed`)
    }
  }

  #budgetChanged (scope: CallScope, endpoint: WecomEndpoint, spent: boolean): void {
    const fields = { corpId: scope.corpId, endpoint }
    if (spent) this.#log.warn(fields, `wecom: outbound budget (api.budget) for ${endpoint} spent; answering 503 without calling WeCom until it refills`)
    else this.#log.info(fields, `wecom: outbound budget for ${endpoint} available again`)
  }

  /** One HTTP exchange under the deadline, reported to the endpoint's breaker. */
  async #send (endpoint: WecomEndpoint, url: string, outgoing: Outgoing, scope: CallScope): Promise<Answer> {
    const started = Date.now()
    const breaker = this.#breaker(endpoint)
    try {
      const answer = await this.#telemetry.call(endpoint, () => this.#exchange(endpoint, url, outgoing, scope.deadline.signal))
      breaker?.success()
      const took = Date.now() - started
      const average = this.#average.get(endpoint) ?? 0
      this.#last.set(endpoint, took)
      this.#average.set(endpoint, average + (took - average) * EWMA_WEIGHT)
      return answer
    } catch (error) {
      breaker?.failure(started)
      const failure = scope.deadline.expired
        ? new WecomTransportError(endpoint, 'timeout', `after ${Date.now() - started} ms`)
        : error as WecomTransportError
      throw this.#failed(endpoint, scope, failure)
    }
  }

  async #exchange (endpoint: WecomEndpoint, url: string, outgoing: Outgoing, signal: AbortSignal): Promise<Answer> {
    const maxBody = outgoing.maxBody ?? MAX_BODY
    let response: Dispatcher.ResponseData
    try {
      response = await request(url, {
        method: outgoing.body === undefined ? 'GET' : 'POST',
        body: outgoing.body,
        headers: outgoing.body === undefined ? undefined : { 'content-type': 'application/json' },
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
      answer = JSON.parse(await readBody(response.body, maxBody))
    } catch (error) {
      if (error instanceof SyntaxError) throw new WecomTransportError(endpoint, 'malformed', 'not JSON')
      if (error instanceof RangeError) throw new WecomTransportError(endpoint, 'malformed', `body over ${maxBody} bytes`)
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      throw new WecomTransportError(endpoint, 'malformed', 'not a JSON object')
    }
    return answer as Answer
  }
}

/** The body as text, or a RangeError past `max` bytes (the rest is not read). */
async function readBody (body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > max) {
      body.destroy()
      throw new RangeError('body too large')
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function appKey (scope: Pick<CallScope, 'corpId' | 'app'>, endpoint: WecomEndpoint): string {
  return `app ${scope.app} ${endpoint}`
}

function corpKey (scope: Pick<CallScope, 'corpId' | 'app'>, endpoint: WecomEndpoint): string {
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
