import type { Telemetry } from '../telemetry.js'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.js'
import { Budget, type SharedCounter } from './budget.js'
import type { Deadline } from './deadline.js'
import type { EndpointSpec } from './endpoints.js'
import { describeErrcode } from './errcodes.js'
import { WecomApiError, WecomFailFastError, WecomTransportError, type WecomEndpoint, type WecomFailure } from './failures.js'
import { FIRST_BACKOFF, Refusals } from './refusals.js'

/** Who a call is made for, and until when. */
export interface CallScope {
  deadline: Deadline
  corpId: string
  /** The app (corpId + secret) whose credential the call uses, as a key: refusals are remembered per app. */
  app: string
  /** Who sent what the call carries (the login's client address): spends its share of the budget. */
  client?: string
  /** The token was fetched for this very retry: a token errcode now speaks of the app itself. */
  freshToken?: boolean
}

/**
 * `scope` for the app keyed `app`. Not `{ ...scope, app }`: on Node 20's V8 a property written
 * after a spread takes a slow path (about 1 µs, against 0.05 µs so), and a login builds several.
 */
export function forApp (scope: Omit<CallScope, 'app'>, app: string): CallScope {
  const scoped = Object.assign({}, scope) as CallScope
  scoped.app = app
  return scoped
}

/** The slice of a pino logger the call path writes its once-per-change lines to. */
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

export interface AdmissionOptions {
  breaker: BreakerOptions | false
  refusals: RefusalWindows
  /** Calls a minute per corp and endpoint, or false for none. */
  budget: number | false
  /** The share of that budget one client may spend on an endpoint that carries what it sent. */
  clientShare: number
  /** Counts the budget across instances (Redis); per process without it. */
  counter?: SharedCounter
  log: WecomLogger
  telemetry: Pick<Telemetry, 'breakerChanged'>
}

/** Weight of the newest round trip in the running estimate of an endpoint's duration. */
const EWMA_WEIGHT = 0.2
/** A client's share of the budget is never below this many calls a minute (see clientBudget). */
const SMALL_OFFICE = 100
/** A failure's cause is said at most once in this many ms, even when calls succeed in between. */
const SAY_AGAIN = 60_000
/** Causes remembered for SAY_AGAIN at the most: endpoints × errcodes stay far below it. */
const MAX_SAID = 1000
/** The refusal of a token fetched for that very call: its key backs the next fetch off. */
const TOKEN_REFUSED = 'token refused while fresh'
/** Milliseconds without a round trip after which an endpoint's expected duration is halved. */
const HALF_LIFE = 5000
/** While estimates say calls would not finish in time, one login goes every this many ms. */
const DEADLINE_PROBE = 1000
const HOUR = 3_600_000

/** A budget a call spends from, under the key of its scope, and how the log names it (unsaid without). */
interface Spending { budget: Budget, key: string, what?: string }

/**
 * The one failure policy of every WeCom call: whether a call may go now (remembered refusals,
 * back-off, the budget, the breaker), and what its outcome teaches (the one place that records
 * and logs it). Log lines say what is remembered and for how long, once per change, never per call.
 */
export class Admission {
  readonly #options: AdmissionOptions
  readonly #refusals = new Refusals<WecomFailure>()
  readonly #breakers = new Map<WecomEndpoint, Breaker>()
  readonly #budget: Budget | undefined
  readonly #shares: Budget | undefined
  /** The hourly caps under WeCom's own hourly limits (EndpointSpec.hourlyLimit), one budget per cap. */
  readonly #hourly = new Map<number, Budget>()
  /** Budget keys found spent, so that running dry and coming back are said once each. */
  readonly #spent = new Set<string>()
  /** When each endpoint's cause was last said, so that a flapping failure is said once a minute. */
  readonly #said = new Map<string, number>()
  /** Endpoints whose failure was said above debug: their recovery is said too, once. */
  readonly #failing = new Set<WecomEndpoint>()
  readonly #average = new Map<WecomEndpoint, number>()
  readonly #last = new Map<WecomEndpoint, { took: number, at: number }>()
  /** When a login last went despite an estimate that said it would not finish in time. */
  #probedAt = 0

  constructor (options: AdmissionOptions) {
    this.#options = options
    if (options.budget !== false) {
      this.#budget = new Budget(options.budget, options.counter)
      if (options.clientShare < 1) this.#shares = new Budget(clientBudget(options.budget, options.clientShare), options.counter)
    }
  }

  /**
   * Milliseconds a call to `endpoint` is expected to take: the running average of its round
   * trips, or the last one when slower (WeCom or this process slowing down shows there first),
   * halved for every HALF_LIFE ms without a round trip: calls refused on the estimate make none, and
   * an estimate that never aged would refuse them for good.
   */
  expected (endpoint: WecomEndpoint): number {
    const last = this.#last.get(endpoint)
    if (last === undefined) return 0
    const estimate = Math.max(this.#average.get(endpoint) ?? 0, last.took)
    return estimate * 0.5 ** (Math.max(0, Date.now() - last.at) / HALF_LIFE)
  }

  /**
   * Throws WecomFailFastError when one of `specs` could not be called now, or not all of them
   * within the deadline, spending nothing: a login checks its later steps before jscode2session
   * spends the member's single-use code. `queueing`: ms the calls would wait locally first.
   */
  check (specs: ReadonlyArray<EndpointSpec<unknown>>, scope: CallScope, queueing: number): void {
    let needed = queueing
    for (const spec of specs) {
      const endpoint = spec.name
      const refusal = this.#refusal(spec, scope)
      if (refusal !== undefined) throw refusal
      const open = this.#breakers.get(endpoint)?.waitFor() ?? 0
      if (open > 0) throw new WecomFailFastError(endpoint, 'breaker', open)
      for (const { budget, key, what } of this.#spending(spec, scope)) this.#spentOr(budget.wait(key), key, scope, endpoint, what)
      needed += this.expected(endpoint)
    }
    if (needed < scope.deadline.remaining()) return
    // One login a second goes all the same: its round trips are what corrects an estimate that
    // went stale (a passing lag), which the refused logins, calling nothing, never would.
    const now = Date.now()
    if (now - this.#probedAt < DEADLINE_PROBE) throw new WecomFailFastError(specs[0].name, 'deadline', DEADLINE_PROBE)
    this.#probedAt = now
  }

  /** The refusal or back-off in force for `spec` in this scope, as the error a call would meet. */
  refusalOf (spec: EndpointSpec<unknown>, scope: CallScope): WecomFailFastError | undefined {
    return this.#refusal(spec, scope)
  }

  /** Resolves when `spec` may be called now, taking the call from the budget; else throws WecomFailFastError. */
  async admit (spec: EndpointSpec<unknown>, scope: CallScope): Promise<void> {
    const endpoint = spec.name
    const refusal = this.#refusal(spec, scope)
    if (refusal !== undefined) throw refusal
    const spending = this.#spending(spec, scope)
    // Each looked at before any is taken: a call one budget refuses spends nothing of the others.
    for (const { budget, key, what } of spending) this.#spentOr(budget.wait(key), key, scope, endpoint, what)
    for (const { budget, key, what } of spending) this.#spentOr(await budget.take(key), key, scope, endpoint, what)
    // Last: an open breaker lets its probe through here, and a probe must then be made.
    const breakerWait = this.#breaker(endpoint)?.admit() ?? 0
    if (breakerWait > 0) throw new WecomFailFastError(endpoint, 'breaker', breakerWait)
  }

  /** WeCom answered (whatever the errcode): the endpoint is alive, and this is how long it took. */
  answered (endpoint: WecomEndpoint, took: number): void {
    this.#breakers.get(endpoint)?.success()
    const average = this.#average.get(endpoint) ?? 0
    this.#last.set(endpoint, { took, at: Date.now() })
    this.#average.set(endpoint, average + (took - average) * EWMA_WEIGHT)
  }

  /**
   * No answer came (transport failure or deadline): counted against the endpoint's breaker. Not
   * against its expected duration: one hung call is WeCom's fault of one call, not a slow WeCom, and
   * taking it for one would refuse the logins after it.
   */
  unanswered (endpoint: WecomEndpoint): void {
    this.#breakers.get(endpoint)?.failure()
  }

  /** The answer was usable: a failure logged before is said to be over, and a back-off starts over. */
  succeeded (spec: EndpointSpec<unknown>, scope: CallScope): void {
    // A fetch that answered ends its back-off; a token that WeCom took ends the back-off of tokens
    // refused while fresh (a fetch answering is not enough: it may hand back a token refused again).
    if (spec.fetches !== undefined) this.#refusals.succeeded(appKey(scope, spec.name))
    if (spec.credential === 'access_token') this.#refusals.succeeded(appKey(scope, TOKEN_REFUSED))
    if (this.#failing.delete(spec.name)) this.#options.log.info({ endpoint: spec.name }, `wecom: ${spec.name} answers again`)
  }

  /**
   * What a failed call throws, after remembering what is to be remembered: the window's fail-fast
   * error when the failure opened one (so that its Retry-After is the window's), else the failure.
   */
  failed (spec: EndpointSpec<unknown>, scope: CallScope, error: WecomFailure): Error {
    const endpoint = spec.name
    if (error instanceof WecomTransportError) {
      if (spec.fetches !== undefined) return this.backOff(spec.name, scope, error, spec.fetches)
      const open = this.#breakers.get(endpoint)?.openFor() ?? 0
      if (open > 0) return new WecomFailFastError(endpoint, 'breaker', open, error)
      this.#note(endpoint, error.kind, error.kind === 'malformed' ? 'error' : 'warn', { corpId: scope.corpId, endpoint }, `wecom: ${error.message}`)
      return error
    }
    const info = describeErrcode(error.errcode)
    if (info.window === 'frequency' || info.window === 'concurrency') {
      return this.#remember(corpKey(scope, endpoint), 'paused', error, this.#options.refusals[info.window], scope)
    }
    if (info.window === 'config' && (error.class !== 'token' || scope.freshToken === true || spec.credential === 'secret')) {
      return this.#remember(appKey(scope, endpoint), 'refused', error, this.#options.refusals.config, scope)
    }
    // A credential fetch refused for another reason (gettoken: any errcode; a ticket: any but a
    // stale token's, refreshed once by the caller) is the app's configuration: remembered, as it
    // would otherwise be asked again for every login or page.
    if (spec.fetches !== undefined && error.class !== 'retry' && (spec.credential === 'secret' || error.class !== 'token')) {
      return this.#remember(appKey(scope, endpoint), 'refused', error, this.#options.refusals.config, scope)
    }
    if (error.class === 'token' && scope.freshToken === true) {
      // A ticket's fetch waits too: the token it keeps would be refused again on every page.
      if (spec.fetches !== undefined) this.#refusals.backOff(appKey(scope, endpoint), error)
      return this.backOff(TOKEN_REFUSED, scope, error, 'access token', 'gettoken')
    }
    if (error.class === 'retry') {
      if (spec.fetches !== undefined) return this.backOff(endpoint, scope, error, spec.fetches)
      this.#note(endpoint, String(error.errcode), 'warn', { corpId: scope.corpId, endpoint, errcode: error.errcode, hint: error.hint }, `wecom: ${error.message}`)
    } else if (error.class === 'config') {
      this.#note(endpoint, String(error.errcode), 'error', { corpId: scope.corpId, endpoint, errcode: error.errcode, hint: error.hint },
        `wecom: ${error.message} (a configuration error: retrying will not help)`)
    }
    // A stale token is refreshed by the caller; a bad code, a member out of range or an answer of
    // the API called (api()) is the client's or the host's own: none says anything of WeCom's health.
    return error
  }

  /**
   * The credential `endpoint` fetches (`what`: gettoken's access token, a JS-SDK ticket) could not
   * be had, or a token was refused while fresh: its next fetch for this app waits 1 s, doubling
   * while it lasts (at most a minute), so that a login or page rate never becomes a fetch rate
   * (about 2,000 failed gettoken calls an hour block the IP, doc path/90454; a ticket's hourly
   * cap is 100, path/90506).
   */
  backOff (key: string, scope: CallScope, error: WecomFailure, what: string, endpoint: WecomEndpoint = key): WecomFailFastError {
    const delay = this.#refusals.backOff(appKey(scope, key), error)
    // Said when the back-off starts; its doublings are the same outage.
    this.#options.log[delay === FIRST_BACKOFF ? 'warn' : 'debug']({ corpId: scope.corpId, endpoint, errcode: (error as Partial<WecomApiError>).errcode },
      `wecom: no usable ${what} (${error.message}); remembered for this app: next ${endpoint} in ${seconds(delay)} s at the earliest, doubling while it lasts`)
    return new WecomFailFastError(endpoint, 'backoff', delay, error)
  }

  /**
   * An endpoint that fetches a token with a secret (gettoken, get_suite_token) also waits while a
   * token it gave was refused fresh: it would only give that token again.
   */
  #refusal (spec: EndpointSpec<unknown>, scope: CallScope): WecomFailFastError | undefined {
    const endpoint = spec.name
    const refusal = this.#refusals.check(appKey(scope, endpoint)) ?? this.#refusals.check(corpKey(scope, endpoint)) ??
      (spec.credential === 'secret' ? this.#refusals.check(appKey(scope, TOKEN_REFUSED)) : undefined)
    return refusal === undefined ? undefined : new WecomFailFastError(endpoint, refusal.kind, refusal.until - Date.now(), refusal.error)
  }

  #remember (key: string, kind: 'refused' | 'paused', error: WecomApiError, window: number, scope: CallScope): WecomFailFastError {
    const endpoint = error.endpoint
    if (this.#refusals.remember(key, kind, error, window)) {
      const { explanation } = describeErrcode(error.errcode)
      const fields = { corpId: scope.corpId, endpoint, errcode: error.errcode, hint: error.hint }
      if (kind === 'refused') {
        this.#options.log.error(fields, `wecom: ${endpoint} refused this app: ${explanation} (errcode ${error.errcode}, a configuration error: retrying will not help); remembered for ${seconds(window)} s: no ${endpoint} call for this app until then`)
      } else {
        this.#options.log.warn(fields, `wecom: ${endpoint} answered ${error.errcode} (${explanation}); remembered for ${seconds(window)} s: no ${endpoint} call for this corp until then`)
      }
    }
    return new WecomFailFastError(endpoint, kind, window, error)
  }

  /**
   * The budgets a call of `spec` in `scope` spends from: api.budget for the corp and endpoint, a
   * client's share of it, and the hourly caps. A cap is half of WeCom's hourly limit: whether WeCom
   * counts in clock hours or rolling ones, and whether this counts in a bucket (which refills as
   * it is spent) or in Redis's fixed windows, no hour can then see more calls than WeCom allows, so
   * a storm of ticket fetches answers 503 here rather than 45009 from WeCom for the rest of its hour.
   */
  #spending (spec: EndpointSpec<unknown>, scope: CallScope): Spending[] {
    const endpoint = spec.name
    const spending: Spending[] = []
    if (this.#budget !== undefined) {
      spending.push({ budget: this.#budget, key: corpKey(scope, endpoint), what: 'api.budget' })
      if (this.#shares !== undefined && spec.clientInput === true && scope.client !== undefined) {
        // One client's share spent is that client's own limit, like the rate limit: not logged.
        spending.push({ budget: this.#shares, key: clientKey(scope, endpoint) })
      }
    }
    const { corp, app } = spec.hourlyLimit ?? {}
    if (corp !== undefined) spending.push({ budget: this.#hourlyCap(corp), key: `hour ${corpKey(scope, endpoint)}`, what: `the corp's hourly cap (half of WeCom's ${corp} an hour)` })
    if (app !== undefined) spending.push({ budget: this.#hourlyCap(app), key: `hour ${appKey(scope, endpoint)}`, what: `the app's hourly cap (half of WeCom's ${app} an hour)` })
    return spending
  }

  #hourlyCap (limit: number): Budget {
    let budget = this.#hourly.get(limit)
    if (budget === undefined) {
      budget = new Budget(Math.max(1, Math.floor(limit / 2)), this.#options.counter, Date.now, HOUR)
      this.#hourly.set(limit, budget)
    }
    return budget
  }

  /** Throws WecomFailFastError when `wait` says the budget `key` is spent; says each change once. */
  #spentOr (wait: number, key: string, scope: CallScope, endpoint: WecomEndpoint, what: string | undefined): void {
    const fields = { corpId: scope.corpId, endpoint }
    if (what === undefined) {
      if (wait > 0) throw new WecomFailFastError(endpoint, 'budget', wait)
      return
    }
    if (wait > 0) {
      if (!this.#spent.has(key)) {
        this.#spent.add(key)
        this.#options.log.warn(fields, `wecom: ${what} for ${endpoint} spent; no call for ${seconds(wait)} s, until it refills`)
      }
      throw new WecomFailFastError(endpoint, 'budget', wait)
    }
    if (this.#spent.delete(key)) this.#options.log.info(fields, `wecom: ${what} for ${endpoint} available again`)
  }

  #note (endpoint: WecomEndpoint, cause: string, level: 'warn' | 'error', fields: object, message: string): void {
    const key = `${endpoint} ${cause}`
    const now = Date.now()
    const said = this.#said.get(key)
    if (said !== undefined && now - said < SAY_AGAIN) {
      this.#options.log.debug(fields, message)
      return
    }
    if (this.#said.size >= MAX_SAID) this.#said.clear()
    this.#said.set(key, now)
    this.#failing.add(endpoint)
    this.#options.log[level](fields, `${message}; said at most once a minute while it lasts`)
  }

  /** The endpoint's breaker, made on its first call; undefined with `api.breaker: false`. */
  #breaker (endpoint: WecomEndpoint): Breaker | undefined {
    const options = this.#options.breaker
    if (options === false) return undefined
    let breaker = this.#breakers.get(endpoint)
    if (breaker === undefined) {
      breaker = new Breaker(options, (state) => this.#breakerChanged(endpoint, state, options.coolDown))
      this.#breakers.set(endpoint, breaker)
    }
    return breaker
  }

  #breakerChanged (endpoint: WecomEndpoint, state: BreakerState, coolDown: number): void {
    this.#options.telemetry.breakerChanged(endpoint, state)
    if (state === 'open') {
      this.#options.log.warn({ endpoint, state }, `wecom: ${endpoint} is not answering; breaker open: no ${endpoint} call for ${seconds(coolDown)} s, then one call probes`)
    } else if (state === 'closed') {
      this.#options.log.info({ endpoint, state }, `wecom: ${endpoint} answers again; breaker closed`)
    }
  }
}

/**
 * A client's calls a minute: its share of the corp's budget, never below SMALL_OFFICE (or the whole
 * budget, when smaller), so that one office behind one address is not cut short on a small budget.
 */
export function clientBudget (budget: number, share: number): number {
  return Math.max(Math.min(budget, SMALL_OFFICE), Math.floor(budget * share))
}

function appKey (scope: Pick<CallScope, 'app'>, endpoint: WecomEndpoint): string {
  return `app ${scope.app} ${endpoint}`
}

function corpKey (scope: Pick<CallScope, 'corpId'>, endpoint: WecomEndpoint): string {
  return `corp ${scope.corpId} ${endpoint}`
}

function clientKey (scope: CallScope, endpoint: WecomEndpoint): string {
  return `client ${scope.client ?? ''} ${scope.corpId} ${endpoint}`
}

function seconds (ms: number): number {
  return Math.ceil(ms / 1000)
}
