import type { FastifyInstance } from 'fastify'
import { UrlNotAllowedError, WebNotConfiguredError } from '../errors.js'
import { kClaims, type Authenticate } from '../guard.js'
import type { WebAppCredentials } from '../surfaces/oauth.js'
import type { WecomClient } from '../wecom/client.js'
import { signPage } from '../wecom/jssdk.js'
import { decide } from '../wecom/outcome.js'

export interface JssdkRouteOptions {
  apps: ReadonlyMap<string, WebAppCredentials>
  origins: ReadonlySet<string>
  client: WecomClient
  /** Milliseconds the two tickets may take to fetch (`api.timeout`). */
  timeout: number
  authenticate: Authenticate
  schema: object
  config: object
}

/**
 * POST /jssdk/signature `{ url }`: what `ww.register`'s getConfigSignature and
 * getAgentConfigSignature return for a page on `web.origins` (doc path/90506, path/96947), for the
 * signed-in member's corp and its web app. The two tickets come from the client's cache (single
 * flight, shared, fetched ahead of expiry, never past half of WeCom's hourly limits).
 */
export async function jssdkRoutes (child: FastifyInstance, { apps, origins, client, timeout, authenticate, schema, config }: JssdkRouteOptions): Promise<void> {
  child.post<{ Body: { url: string } }>('/jssdk/signature', {
    schema,
    config,
    // By cookie, authenticate itself refuses a POST from a page not on web.origins.
    onRequest: authenticate
  }, async (request) => {
    const { corpid } = request[kClaims]!
    const app = apps.get(corpid)
    if (app === undefined) throw new WebNotConfiguredError(corpid)
    if (!onOrigins(request.body.url, origins)) throw new UrlNotAllowedError()
    // Cached, as nearly always: no deadline, no timer. Else fetched (single flight) within api.timeout.
    const tickets = client.cachedTickets(app) ?? await decide(timeout, 'login', request.log, async (deadline) => {
      const [jsapi, agent] = await Promise.all([client.jsapiTicket(app, deadline), client.agentTicket(app, deadline)])
      return { jsapi, agent }
    })
    return { corpId: app.corpId, agentId: app.agentId, ...signPage(request.body.url, tickets) }
  })
}

/**
 * Whether `url` is a page of one of `origins` as a browser writes `location.href`: the origin, then
 * `/`, `?`, `#` or nothing. Stricter than parsing it: `https://app.test@evil.example` and
 * `http://app.test\@evil.example`, which a URL parser may read either way, are refused.
 */
function onOrigins (url: string, origins: ReadonlySet<string>): boolean {
  for (const origin of origins) {
    if (url.startsWith(origin) && (url.length === origin.length || '/?#'.includes(url[origin.length]!))) return true
  }
  return false
}
