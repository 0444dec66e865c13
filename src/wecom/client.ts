import { setTimeout as sleep } from 'node:timers/promises'
import { createTelemetry, type Telemetry } from '../telemetry.js'
import { Admission, forApp, type AdmissionOptions, type CallScope, type WecomLogger } from './admission.js'
import { CredentialCache, TokenCache, tokenKey, type CorpCredentials, type CredentialCacheOptions, type FetchedCredential, type SharedTokenStore, type TicketKind } from './credentials.js'
import { DeadlineExceededError, withDeadline, type Deadline } from './deadline.js'
import { getAgentTicket, getJsapiTicket, gettoken, type EndpointSpec, type WecomTicket } from './endpoints.js'
import { getCorpToken, getSuiteToken } from './service-endpoints.js'
import { WecomApiError, WecomFailFastError, WecomTransportError } from './failures.js'
import { Transport, type TransportOptions } from './transport.js'

export interface WecomClientOptions extends TransportOptions, Omit<AdmissionOptions, 'log' | 'telemetry'> {
  /** First back-off before retrying errcode -1, doubled on each retry (ms). */
  retryDelay?: number
  /** Where access tokens and JS-SDK tickets are shared between processes (Redis). */
  shared?: SharedTokenStore
  /** The newest suite_ticket WeCom pushed to a suite, null when none is within its 30 minutes. */
  suiteTicketOf?: (suiteId: string) => Promise<string | null>
  log: WecomLogger
  /** Spans and metrics of each exchange and breaker change; no-ops when absent. */
  telemetry?: Pick<Telemetry, 'call' | 'breakerChanged' | 'tokenFetch' | 'storeDown'>
}

/** What one call sends beside its credential: the query, and for a POST its JSON body. */
export interface CallRequest {
  query?: Record<string, string>
  body?: unknown
}

const MAX_RETRIES = 3
/** Milliseconds a caller is told to wait while a suite has no suite_ticket. */
const NO_TICKET_RETRY = 30_000

/**
 * Every WeCom call of the plugin: admitted (admission.ts), sent (transport.ts), its errcode typed
 * and -1 retried within the deadline, recorded, and, for an app's calls, made with its cached
 * access token, refreshed once when WeCom says it is stale. Knows nothing of Fastify; throws
 * WecomApiError, WecomTransportError, WecomFailFastError or DeadlineExceededError, which
 * outcome.ts alone turns into public errors.
 */
export class WecomClient {
  readonly tokens: TokenCache
  readonly #tickets: Record<TicketKind, CredentialCache>
  readonly #suiteTokens: CredentialCache
  /** Suites whose missing suite_ticket was said, until a suite token is had again. */
  readonly #ticketMissing = new Set<string>()
  readonly #transport: Transport
  readonly #admission: Admission
  readonly #retryDelay: number
  readonly #timeout: number
  readonly #telemetry: NonNullable<WecomClientOptions['telemetry']>
  readonly #options: WecomClientOptions

  constructor (options: WecomClientOptions) {
    this.#options = options
    this.#telemetry = options.telemetry ?? createTelemetry()
    this.#transport = new Transport(options)
    this.#admission = new Admission({ ...options, telemetry: this.#telemetry })
    this.#retryDelay = options.retryDelay ?? 50
    this.#timeout = options.timeout
    this.tokens = new TokenCache({
      // Its own deadline: one fetch serves every call waiting for it, each racing its own deadline.
      fetch: (corp) => this.#telemetry.tokenFetch(() => withDeadline(this.#timeout, async (deadline) => {
        const scope = { deadline, corpId: corp.corpId, app: tokenKey(corp) }
        // A corp that installed a third-party suite: its token comes from the suite's (doc path/90605).
        const answer = corp.suite === undefined
          ? await this.call(gettoken, { query: { corpid: corp.corpId, corpsecret: corp.secret } }, scope)
          : await this.callSuite(getCorpToken, corp.suite, { body: { auth_corpid: corp.corpId, permanent_code: corp.secret } }, scope)
        return { accessToken: answer.access_token, expiresIn: answer.expires_in }
      })),
      ...this.#sharing('access token'),
      onBackgroundRefreshError: () => options.log.warn({}, 'wecom: refreshing the access token ahead of expiry failed; will retry on expiry')
    })
    this.#tickets = {
      jsapi_ticket: this.#ticketCache('jsapi_ticket', getJsapiTicket, {}),
      agent_ticket: this.#ticketCache('agent_ticket', getAgentTicket, { type: 'agent_config' })
    }
    this.#suiteTokens = new CredentialCache({
      kind: 'suite_access_token',
      fetch: (suite) => withDeadline(this.#timeout, (deadline) => this.#fetchSuiteToken(suite, deadline)),
      ...this.#sharing('suite access token'),
      onBackgroundRefreshError: () => options.log.warn({}, 'wecom: refreshing a suite access token ahead of expiry failed; will retry on expiry')
    })
  }

  /**
   * A suite's access token (`suite`: its SuiteId as `corpId`, and its secret) within `deadline`:
   * cached, shared, single-flight, fetched with the newest suite_ticket. Throws WecomFailFastError
   * ('no-ticket') while the suite has none: WeCom pushes one every 10 minutes.
   */
  suiteToken (suite: CorpCredentials, deadline: Deadline): Promise<string> {
    return deadline.race(this.#suiteTokens.get(suite))
  }

  async #fetchSuiteToken (suite: CorpCredentials, deadline: Deadline): Promise<FetchedCredential> {
    const suiteId = suite.corpId
    const ticket = await deadline.race(this.#options.suiteTicketOf?.(suiteId) ?? Promise.resolve(null))
    if (ticket === null) {
      // Said once until a token is had: a fresh deployment has none until WeCom's next push.
      if (!this.#ticketMissing.has(suiteId)) {
        this.#ticketMissing.add(suiteId)
        this.#options.log.warn({ suiteId }, 'wecom: no suite_ticket for the suite within its 30 minutes: what needs the suite\'s token answers 503 until WeCom pushes one (every 10 minutes); to have one now, push it again from the provider\'s admin console (刷新 Ticket)')
      }
      throw new WecomFailFastError(getSuiteToken.name, 'no-ticket', NO_TICKET_RETRY)
    }
    const answer = await this.call(getSuiteToken, { body: { suite_id: suiteId, suite_secret: suite.secret, suite_ticket: ticket } }, { deadline, corpId: suiteId, app: tokenKey(suite) })
    this.#ticketMissing.delete(suiteId)
    return { value: answer.suite_access_token, expiresIn: answer.expires_in }
  }

  /**
   * Throws WecomFailFastError when one of `specs` could not be called now, or not all of them in
   * the time left (the pool's queue included), spending nothing: a login checks its later steps
   * before jscode2session spends the member's single-use code.
   */
  precheck (specs: ReadonlyArray<EndpointSpec<unknown>>, scope: CallScope): void {
    const queued = this.#transport.queued
    this.#admission.check(specs, scope, this.#admission.expected(specs[0].name) * Math.ceil(queued))
  }

  /** The app's access token within `deadline`: cached, shared, single-flight. */
  accessToken (corp: CorpCredentials, deadline: Deadline): Promise<string> {
    return deadline.race(this.tokens.get(corp))
  }

  /**
   * The corp's JS-SDK ticket (get_jsapi_ticket, for wx.config / ww.register's getConfigSignature),
   * fetched with `app`'s access token, within `deadline`: cached per app until ahead of its expiry,
   * shared, single-flight, and never fetched past half of WeCom's hourly limits (doc path/90506).
   * Rejects as callApp does, or with WecomFailFastError ('budget') once the hourly cap is spent.
   */
  jsapiTicket (app: CorpCredentials, deadline: Deadline): Promise<string> {
    return deadline.race(this.#tickets.jsapi_ticket.get(app))
  }

  /** Both JS-SDK tickets of `app` when both are cached and fresh, at once; undefined when one must be fetched. */
  cachedTickets (app: CorpCredentials): { jsapi: string, agent: string } | undefined {
    const jsapi = this.#tickets.jsapi_ticket.cached(app)
    const agent = this.#tickets.agent_ticket.cached(app)
    return jsapi === undefined || agent === undefined ? undefined : { jsapi, agent }
  }

  /** The app's JS-SDK ticket (ticket/get?type=agent_config, for agentConfig), as jsapiTicket. */
  agentTicket (app: CorpCredentials, deadline: Deadline): Promise<string> {
    return deadline.race(this.#tickets.agent_ticket.get(app))
  }

  /**
   * `spec` on the app's access token. A token WeCom calls stale is dropped (only if it is still the
   * one that failed) and the call made once more with a fresh one; never a loop: a refusal of the
   * fresh token is final for this call and backs the next fetch off (admission.ts), and the
   * refresh is not started when the time left could not cover it.
   */
  callApp<T> (spec: EndpointSpec<T>, corp: CorpCredentials, request: CallRequest, scope: Omit<CallScope, 'app'>): Promise<T> {
    return this.#callWith({ cache: this.tokens, param: 'access_token', fetcher: gettoken }, spec, corp, request, scope)
  }

  /**
   * `spec` on the suite's access token (`suite`: its SuiteId as `corpId`, and its secret), as
   * callApp on an app's: the service provider's endpoints (service-endpoints.ts).
   */
  callSuite<T> (spec: EndpointSpec<T>, suite: CorpCredentials, request: CallRequest, scope: Omit<CallScope, 'app'>): Promise<T> {
    return this.#callWith({ cache: this.#suiteTokens, param: 'suite_access_token', fetcher: getSuiteToken }, spec, suite, request, scope)
  }

  /**
   * Forgets the corp's access token, here and in the shared store: its app was uninstalled
   * (cancel_auth) or its permanent code replaced, and the token must not serve another call.
   */
  forgetToken (corp: CorpCredentials): Promise<void> {
    return this.tokens.forget(corp)
  }

  async #callWith<T> (source: CredentialSource, spec: EndpointSpec<T>, corp: CorpCredentials, request: CallRequest, scope: Omit<CallScope, 'app'>): Promise<T> {
    const appScope = forApp(scope, tokenKey(corp))
    // A cached token at once, as nearly always: no race, no listener on the deadline. A deadline
    // already passed is still refused here, before the call counts against the endpoint's breaker.
    const token = (scope.deadline.expired ? undefined : source.cache.cached(corp)) ?? await scope.deadline.race(source.cache.get(corp))
    try {
      return await this.call(spec, withToken(request, source.param, token), appScope)
    } catch (error) {
      if (!(error instanceof WecomApiError) || error.class !== 'token') throw error
      const { deadline } = scope
      // No fresh token can be had now: the one in hand stays for the calls it may still serve, and
      // this call alone fails, rather than every call waiting for a fetch that cannot be made.
      const backingOff = this.#admission.refusalOf(source.fetcher, appScope)
      if (backingOff !== undefined) throw backingOff
      if (deadline.remaining() <= this.#admission.expected(source.fetcher.name) + this.#admission.expected(spec.name)) throw new DeadlineExceededError()
      await deadline.race(source.cache.drop(corp, token))
      const fresh = await deadline.race(source.cache.get(corp))
      return await this.call(spec, withToken(request, source.param, fresh), Object.assign({}, appScope, { freshToken: true }))
    }
  }

  /** One call of `spec` with -1 retried within the deadline: its answer's fields on errcode 0. */
  async call<T> (spec: EndpointSpec<T>, request: CallRequest, scope: CallScope): Promise<T> {
    const outgoing = {
      path: spec.path,
      query: request.query ?? {},
      body: spec.method === 'POST' ? JSON.stringify(request.body ?? {}) : undefined,
      maxBody: spec.maxBody
    }
    for (let attempt = 0; ; attempt++) {
      await this.#admission.admit(spec, scope)
      const answer = await this.#send(spec, outgoing, scope)
      const errcode = answer.errcode ?? 0
      if (errcode === 0) {
        const parsed = spec.answer.safeParse(answer)
        if (!parsed.success) {
          throw this.#admission.failed(spec, scope, new WecomTransportError(spec.name, 'malformed', `fields missing or of the wrong type: ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`))
        }
        this.#admission.succeeded(spec, scope)
        return parsed.data
      }
      if (typeof errcode !== 'number') throw this.#admission.failed(spec, scope, new WecomTransportError(spec.name, 'malformed', 'errcode is not a number'))
      const delay = this.#retryDelay * 2 ** attempt
      // A retry is not started when the time left could not cover it: the answer would come too
      // late. One only on an endpoint WeCom caps by the hour: each try spends the cap, and its
      // fetch (shared by every caller waiting) backs off instead (admission.ts).
      const retries = spec.hourlyLimit === undefined ? MAX_RETRIES : 1
      if (errcode === -1 && attempt < retries && scope.deadline.remaining() > delay + this.#admission.expected(spec.name)) {
        await sleep(delay, undefined, { signal: scope.deadline.signal }).catch(() => {
          throw new WecomTransportError(spec.name, 'timeout', 'deadline passed while waiting to retry -1')
        })
        continue
      }
      throw this.#admission.failed(spec, scope, new WecomApiError(spec.name, errcode, answer.errmsg, spec))
    }
  }

  async close (): Promise<void> {
    await this.#transport.close()
  }

  /**
   * A cache of `kind` tickets, each fetched by `spec` with the app's access token under a deadline
   * of its own (one fetch serves every caller waiting for it), so that the token's refresh and
   * admission (the hourly caps among them) apply.
   */
  #ticketCache (kind: TicketKind, spec: EndpointSpec<WecomTicket>, query: Record<string, string>): CredentialCache {
    return new CredentialCache({
      kind,
      fetch: (app) => withDeadline(this.#timeout, async (deadline) => {
        const answer = await this.callApp(spec, app, { query }, { deadline, corpId: app.corpId })
        return { value: answer.ticket, expiresIn: answer.expires_in }
      }),
      ...this.#sharing(`${spec.name} ticket`),
      onBackgroundRefreshError: () => this.#options.log.warn({ endpoint: spec.name }, `wecom: refreshing the ${spec.name} ticket ahead of expiry failed; will retry on expiry`)
    })
  }

  /** A cache's shared store, and its outages said once each, naming what the cache holds. */
  #sharing (what: string): Pick<CredentialCacheOptions, 'shared' | 'onSharedStoreDown' | 'onSharedStoreUp'> {
    const { log, shared } = this.#options
    return {
      shared,
      onSharedStoreDown: () => {
        this.#telemetry.storeDown('tokens')
        log.warn({}, `wecom: shared token store unavailable, using a per-process ${what} until it returns`)
      },
      onSharedStoreUp: () => log.info({}, 'wecom: shared token store is back')
    }
  }

  /** One HTTP exchange under the deadline, told to the endpoint's breaker. */
  async #send (spec: EndpointSpec<unknown>, outgoing: Parameters<Transport['exchange']>[1], scope: CallScope): Promise<Record<string, unknown>> {
    const started = Date.now()
    try {
      const answer = await this.#telemetry.call(spec.name, () => this.#transport.exchange(spec.name, outgoing, scope.deadline.signal))
      this.#admission.answered(spec.name, Date.now() - started)
      return answer
    } catch (error) {
      this.#admission.unanswered(spec.name)
      const failure = scope.deadline.expired
        ? new WecomTransportError(spec.name, 'timeout', `after ${Date.now() - started} ms`)
        : error as WecomTransportError
      throw this.#admission.failed(spec, scope, failure)
    }
  }
}

/** Where a call's token comes from: its cache, its query parameter, and the endpoint that fetches it. */
interface CredentialSource { cache: CredentialCache, param: 'access_token' | 'suite_access_token', fetcher: EndpointSpec<unknown> }

/** The token last: a query naming the token's parameter cannot replace it. */
function withToken (request: CallRequest, param: CredentialSource['param'], token: string): CallRequest {
  // Copied and then written, not spread into a literal: see forApp.
  const query = Object.assign({}, request.query)
  query[param] = token
  return { query, body: request.body }
}
