import { ApiCallError, CorpUnknownError, InvalidArgumentError, UpstreamError, unavailable } from '../errors.js'
import {
  WecomApiError, WecomFailFastError, WecomTransportError, endpointOf, type CallScope, type WecomClient, type WecomEndpoint,
  type WecomLogger
} from './client.js'
import { DeadlineExceededError, withDeadline, type Deadline } from './deadline.js'
import { tokenKey, type CorpCredentials, type TokenCache } from './token-cache.js'

/** A JSON answer of WeCom's, errcode 0. */
export type WecomAnswer = Record<string, unknown>

/**
 * The app's own WeCom calls on the plugin's access token (`app.wecom.api(corpId?)`): any JSON API
 * of https://developer.work.weixin.qq.com/document/path/90664 and its siblings, under the login's
 * rules (see README, "The app's other WeCom calls").
 */
export interface WecomApi {
  /**
   * GET `path` (e.g. `/cgi-bin/department/list`) with `query` (the access token is added). Resolves
   * to the parsed answer on errcode 0; rejects with WECOM_API_ERROR (`errcode`, `endpoint`, `hint`)
   * on any other errcode, WECOM_UNAVAILABLE (503) when WeCom is unreachable, slow past
   * `api.timeout`, rate-limited or behind its breaker, WECOM_UPSTREAM_ERROR (502) for an answer
   * that is not JSON or a refusal remembered for the app, WECOM_INVALID_ARGUMENT for a path or
   * query that is not one.
   */
  get (path: string, query?: Record<string, string | number | boolean>): Promise<WecomAnswer>
  /** POST `body` as JSON (`{}` when absent) to `path`, e.g. `/cgi-bin/message/send`; answers as `get`. */
  post (path: string, body?: unknown): Promise<WecomAnswer>
}

export interface ApiDependencies {
  corps: readonly CorpCredentials[]
  client: WecomClient
  tokens: TokenCache
  /** Milliseconds all the WeCom work of one call may take (`api.timeout`), as for a login. */
  timeout: number
  log: Pick<WecomLogger, 'debug'>
}

type Call<T> = (token: string, scope: CallScope) => Promise<T>

/**
 * Runs `call` on the app's cached token. A stale token (42001/40014/40001) is dropped only if it
 * is still the one that failed, then the call is made once more with a fresh one. Never a loop: a
 * second failure is final, and the refresh is not started when the time left could not cover it.
 */
export async function withToken<T> (
  { client, tokens }: Pick<ApiDependencies, 'client' | 'tokens'>,
  corp: CorpCredentials, deadline: Deadline, endpoint: WecomEndpoint, call: Call<T>
): Promise<T> {
  const scope: CallScope = { deadline, corpId: corp.corpId, app: tokenKey(corp) }
  const token = await deadline.race(tokens.get(corp))
  try {
    return await call(token, scope)
  } catch (error) {
    if (!(error instanceof WecomApiError) || error.class !== 'token') throw error
    if (deadline.remaining() <= client.expected('gettoken') + client.expected(endpoint)) throw new DeadlineExceededError()
    await deadline.race(tokens.drop(corp, token))
    return await call(await deadline.race(tokens.get(corp)), { ...scope, freshToken: true })
  }
}

/**
 * A failure that is no errcode of WeCom's (breaker, remembered refusal, budget, deadline,
 * transport) in the errors table's terms, or undefined for anything else. WeCom's trouble was
 * logged by the client, once per change: the caller logs at debug only.
 */
export function failureOf (error: unknown): Error | undefined {
  if (error instanceof WecomFailFastError) return error.reason === 'refused' ? new UpstreamError() : unavailable(error.retryAfter)
  if (error instanceof DeadlineExceededError) return unavailable()
  if (error instanceof WecomTransportError) return error.kind === 'malformed' ? new UpstreamError() : unavailable()
  return undefined
}

/** `app.wecom.api` and `app.wecom.accessToken`, for the configured corps. */
export function createApi (deps: ApiDependencies): {
  api (corpId?: string): WecomApi
  accessToken (corpId?: string): Promise<string>
} {
  const corpsById = new Map(deps.corps.map((corp) => [corp.corpId, corp]))

  // The corpId's type and size are checked by the decorator, with every other argument of the host's.
  function corpOf (corpId: string | undefined): CorpCredentials {
    if (corpId === undefined) return deps.corps[0]
    const corp = corpsById.get(corpId)
    if (corp === undefined) throw new CorpUnknownError(corpId)
    return corp
  }

  async function run<T> (work: (deadline: Deadline) => Promise<T>): Promise<T> {
    try {
      return await withDeadline(deps.timeout, work)
    } catch (error) {
      throw translate(error, deps.log)
    }
  }

  function call (corp: CorpCredentials, path: unknown, request: { query?: Record<string, string>, body?: unknown }): Promise<WecomAnswer> {
    const endpoint = typeof path === 'string' ? endpointOf(path) : undefined
    if (endpoint === undefined) {
      return Promise.reject(new InvalidArgumentError('path', 'a WeCom API path under /cgi-bin/, e.g. /cgi-bin/message/send'))
    }
    // gettoken is the login's own: a host's call with another secret would be remembered as this
    // app's refusal and drop its token. The token is app.wecom.accessToken().
    if (endpoint === 'gettoken') {
      return Promise.reject(new InvalidArgumentError('path', 'a WeCom API path other than /cgi-bin/gettoken (app.wecom.accessToken() gives the token)'))
    }
    return run((deadline) => withToken(deps, corp, deadline, endpoint, (token, scope) => deps.client.call(endpoint, token, request, scope)))
  }

  return {
    api (corpId) {
      const corp = corpOf(corpId)
      return {
        get (path, query) {
          let strings: Record<string, string>
          try {
            strings = queryOf(query)
          } catch (error) {
            return Promise.reject(error)
          }
          return call(corp, path, { query: strings })
        },
        post: (path, body) => call(corp, path, { body: body ?? {} })
      }
    },
    async accessToken (corpId) {
      const corp = corpOf(corpId)
      return run((deadline) => deadline.race(deps.tokens.get(corp)))
    }
  }
}

function queryOf (query: unknown): Record<string, string> {
  if (query === undefined) return {}
  const invalid = (): Error => new InvalidArgumentError('query', 'an object of strings, numbers and booleans')
  if (typeof query !== 'object' || query === null || Array.isArray(query)) throw invalid()
  const strings: Record<string, string> = {}
  for (const [name, value] of Object.entries(query)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw invalid()
    strings[name] = String(value)
  }
  return strings
}

function translate (error: unknown, log: ApiDependencies['log']): unknown {
  const failure = failureOf(error)
  if (failure !== undefined) {
    log.debug({ endpoint: (error as { endpoint?: string }).endpoint }, `wecom: ${(error as Error).message}`)
    return failure
  }
  if (!(error instanceof WecomApiError)) return error
  // Busy after its retries: a passing state, as for a login.
  if (error.class === 'retry') return unavailable()
  log.debug({ endpoint: error.endpoint, errcode: error.errcode, hint: error.hint }, `wecom: ${error.message}`)
  return Object.assign(new ApiCallError(error.endpoint, error.errcode), { errcode: error.errcode, endpoint: error.endpoint, hint: error.hint })
}
