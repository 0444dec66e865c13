import { CorpUnknownError, InvalidArgumentError } from '../errors.js'
import type { WecomLogger } from './admission.js'
import type { CallRequest, WecomClient } from './client.js'
import type { CorpCredentials } from './credentials.js'
import { apiEndpoint, gettoken } from './endpoints.js'
import { decide } from './outcome.js'

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
  /** A corp that installed one of `suites`: its credentials, null when none of the suites is installed there. */
  installed?: (corpId: string) => Promise<CorpCredentials | null>
  client: WecomClient
  /** Milliseconds all the WeCom work of one call may take (`api.timeout`), as for a login. */
  timeout: number
  log: Pick<WecomLogger, 'debug' | 'info'>
}

/** `app.wecom.api` and `app.wecom.accessToken`, for the configured corps and the corps that installed a suite. */
export function createApi ({ corps, installed, client, timeout, log }: ApiDependencies): {
  api (corpId?: string): WecomApi
  accessToken (corpId?: string): Promise<string>
} {
  const corpsById = new Map(corps.map((corp) => [corp.corpId, corp]))

  // The corpId's type and size are checked by the decorator, with every other argument of the host's.
  // A configured corp's at once; an installed corp's from the store, so its refusal comes as a rejection.
  function corpOf (corpId: string | undefined): CorpCredentials | Promise<CorpCredentials> {
    const corp = corpId === undefined ? corps[0] : corpsById.get(corpId)
    if (corp !== undefined) return corp
    if (corpId === undefined) throw new InvalidArgumentError('corpId', 'given: no corp is configured, only suites')
    if (installed === undefined) throw new CorpUnknownError(corpId)
    return installed(corpId).then((found) => {
      if (found === null) throw new CorpUnknownError(corpId)
      return found
    })
  }

  function call (corp: CorpCredentials | Promise<CorpCredentials>, path: unknown, method: 'GET' | 'POST', request: CallRequest): Promise<WecomAnswer> {
    const spec = typeof path === 'string' ? apiEndpoint(path, method) : undefined
    if (spec === undefined) {
      return Promise.reject(new InvalidArgumentError('path', 'a WeCom API path under /cgi-bin/, e.g. /cgi-bin/message/send'))
    }
    // gettoken is the login's own: a host's call with another secret would be remembered as this
    // app's refusal and drop its token. The token is app.wecom.accessToken().
    if (spec.name === gettoken.name) {
      return Promise.reject(new InvalidArgumentError('path', 'a WeCom API path other than /cgi-bin/gettoken (app.wecom.accessToken() gives the token)'))
    }
    return Promise.resolve(corp).then((found) =>
      decide(timeout, 'api', log, (deadline) => client.callApp(spec, found, request, { deadline, corpId: found.corpId })))
  }

  return {
    api (corpId) {
      const corp = corpOf(corpId)
      // Told through get() and post(): an api() never called on must not leave a rejection unhandled.
      if (corp instanceof Promise) corp.catch(() => {})
      return {
        get (path, query) {
          let strings: Record<string, string>
          try {
            strings = queryOf(query)
          } catch (error) {
            return Promise.reject(error)
          }
          return call(corp, path, 'GET', { query: strings })
        },
        post: (path, body) => call(corp, path, 'POST', { body: body ?? {} })
      }
    },
    async accessToken (corpId) {
      const corp = await corpOf(corpId)
      return decide(timeout, 'api', log, (deadline) => client.accessToken(corp, deadline))
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
