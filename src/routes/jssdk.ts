import type { FastifyInstance, FastifyReply } from 'fastify'
import { UrlNotAllowedError, WebNotConfiguredError } from '../errors.js'
import { kClaims, type Authenticate } from '../guard.js'
import type { WebAppCredentials } from '../surfaces/oauth.js'
import type { WecomClient } from '../wecom/client.js'
import { signPage, type PageSignature, type PageTickets } from '../wecom/jssdk.js'
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
  // The answer is written here, not by the plugin's serializer (JSON.stringify, a fifth of the
  // route's own cost): an app's part is the same for every page, and a signature's fields are
  // digits and hex, which JSON writes as they are.
  const signing = new Map([...apps].map(([corpid, app]) => [corpid, { app, head: `{"corpId":${JSON.stringify(app.corpId)},"agentId":${app.agentId}` }]))
  child.post<{ Body: { url: string } }>('/jssdk/signature', {
    schema,
    config,
    // By cookie, authenticate itself refuses a POST from a page not on web.origins.
    onRequest: authenticate
  }, (request, reply) => {
    const { corpid, suite } = request[kClaims]!
    const { url } = request.body
    // A suite's session is not the corp's own web app's, whose tickets these would be.
    if (suite !== undefined) throw new WebNotConfiguredError(`suite ${suite}'s session`)
    const corp = signing.get(corpid)
    if (corp === undefined) throw new WebNotConfiguredError(`corpId ${corpid}`)
    if (!onOrigins(url, origins)) throw new UrlNotAllowedError()
    const { app, head } = corp
    // Cached, as nearly always: answered at once, with no promise for Fastify to wait on. Else
    // fetched (single flight) within api.timeout.
    const tickets = client.cachedTickets(app)
    if (tickets !== undefined) {
      answer(reply, head, url, tickets)
      return
    }
    return decide(timeout, 'login', request.log, async (deadline) => {
      const [jsapi, agent] = await Promise.all([client.jsapiTicket(app, deadline), client.agentTicket(app, deadline)])
      return { jsapi, agent }
    }).then((fetched) => answer(reply, head, url, fetched))
  })
}

function answer (reply: FastifyReply, head: string, url: string, tickets: PageTickets): FastifyReply {
  const signed = signPage(url, tickets)
  return reply.type(JSON_TYPE).send(`${head},"config":${pageJson(signed.config)},"agentConfig":${pageJson(signed.agentConfig)}}`)
}

const JSON_TYPE = 'application/json; charset=utf-8'
const HREF_CHARACTERS = /^[\x21-\x7e]+$/

function pageJson ({ timestamp, nonceStr, signature }: PageSignature): string {
  return `{"timestamp":${timestamp},"nonceStr":"${nonceStr}","signature":"${signature}"}`
}

/**
 * Whether `url` is a page of one of `origins` as a browser writes `location.href`: printable ASCII
 * (a browser percent-encodes spaces, controls and other characters, and writes a host in
 * punycode), the origin, then `/`, `?`, `#` or nothing. Stricter than parsing it:
 * `https://app.test@evil.example` and `http://app.test\@evil.example`, which a URL parser may
 * read either way, are refused.
 */
function onOrigins (url: string, origins: ReadonlySet<string>): boolean {
  if (!HREF_CHARACTERS.test(url)) return false
  for (const origin of origins) {
    if (url.startsWith(origin) && (url.length === origin.length || '/?#'.includes(url[origin.length]!))) return true
  }
  return false
}
