import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CorpUnknownError, InvalidCodeError, WebNotConfiguredError } from '../errors.js'
import type { LoginContext, VerifiedLogin } from '../member.js'
import type { IssuedTokens } from '../sessions/sessions.js'
import { authorizeUrl, type OAuthScope, type WebAppCredentials } from '../surfaces/oauth.js'
import { loginPanelParams, ssoUrl } from '../surfaces/sso.js'
import { cookieValue, type Cookies } from '../web/cookies.js'
import { allowedRedirect } from '../web/redirects.js'
import type { LoginStates, WebVia } from '../web/state.js'

export interface WebRoutesOptions {
  /** The corps' web apps, by corpId, in the order of `corps`. */
  apps: ReadonlyMap<string, WebAppCredentials>
  /** Every configured corpId: an unknown one is told apart from one without a web app. */
  corpIds: ReadonlySet<string>
  /** `web.redirects`: the absolute URLs a login may return to. */
  redirects: readonly string[]
  urls: { authorize: string, sso: string }
  states: LoginStates
  cookies: Cookies
  /** The callback's path as the browser reaches it (the host's prefixes included). */
  callbackPath: string
  /** `web.origins`: WeCom is sent back to the request's origin when it is one of them, else to the first. */
  origins: ReadonlySet<string>
  /** The web app's code → the member (surfaces/oauth.ts). */
  login (app: WebAppCredentials, code: string, context: LoginContext): Promise<VerifiedLogin>
  /** A session for a verified login (sessions.start, with its span). */
  start (login: VerifiedLogin, context: LoginContext): Promise<IssuedTokens>
  schemas: { webLogin: object, webLoginParams: object, webCallback: object }
  config: object
}

interface LoginQuery { corpId?: string, redirect?: string, scope?: OAuthScope, via?: WebVia }

/** WeCom's in-app browser says so in its User-Agent (wxwork); anything else is a PC browser. */
const INSIDE_WECOM = /\bwxwork\//i

/**
 * The browser's way in: /web/login (302 to WeCom's page), /web/login/params (an embedded QR
 * panel's), /web/callback (WeCom's redirect back: state, code, member, cookies, 302).
 */
export async function webRoutes (child: FastifyInstance, options: WebRoutesOptions): Promise<void> {
  const { apps, states, cookies, schemas, config } = options
  const [firstCorp] = apps.keys()

  /** The login's app and redirect, refused (400) before anything else when either is not allowed. */
  function begin (query: LoginQuery): { app: WebAppCredentials, redirect: string } {
    const redirect = allowedRedirect(query.redirect, options.redirects)
    const corpId = query.corpId ?? firstCorp!
    const app = apps.get(corpId)
    if (app === undefined) throw options.corpIds.has(corpId) ? new WebNotConfiguredError(corpId) : new CorpUnknownError(corpId)
    return { app, redirect }
  }

  // Not the Host header as it came: a forged one must not name where WeCom sends the code.
  const [firstOrigin] = options.origins
  function callbackUrl (request: FastifyRequest): string {
    const origin = `${request.protocol}://${request.host}`
    return `${options.origins.has(origin) ? origin : firstOrigin}${options.callbackPath}`
  }

  child.get<{ Querystring: LoginQuery }>('/web/login', { schema: schemas.webLogin, config }, async (request, reply) => {
    const { app, redirect } = begin(request.query)
    const via = request.query.via ?? (INSIDE_WECOM.test(request.headers['user-agent'] ?? '') ? 'oauth' : 'sso')
    const scope = request.query.scope ?? 'snsapi_base'
    const { state, cookie } = states.issue({ corpId: app.corpId, redirect, scope, via })
    cookies.state(reply, cookie)
    const target = via === 'oauth'
      ? authorizeUrl(options.urls.authorize, app, callbackUrl(request), scope, state)
      : ssoUrl(options.urls.sso, app, callbackUrl(request), state)
    return reply.header('cache-control', 'no-store').redirect(target, 302)
  })

  child.get<{ Querystring: LoginQuery }>('/web/login/params', { schema: schemas.webLoginParams, config }, async (request, reply) => {
    const { app, redirect } = begin(request.query)
    const { state, cookie } = states.issue({ corpId: app.corpId, redirect, scope: 'snsapi_base', via: 'sso' })
    cookies.state(reply, cookie)
    reply.header('cache-control', 'no-store')
    return loginPanelParams(app, callbackUrl(request), state)
  })

  child.get<{ Querystring: { code?: string, state?: string } }>('/web/callback', { schema: schemas.webCallback, config, logSerializers: { req: withoutQuery } }, async (request, reply) => {
    // Spent whatever follows: a state serves one callback, and a failed one starts again.
    cookies.clearState(reply)
    reply.header('cache-control', 'no-store')
    // A callback without a code claims no state: it could only crowd out the claims of real ones.
    if (request.query.code === undefined) throw new InvalidCodeError()
    const login = await states.consume(request.query.state, cookieValue(request, cookies.names.state))
    const app = apps.get(login.corpId)
    // A corp's web app removed from the options between the redirect and the callback.
    if (app === undefined) throw new WebNotConfiguredError(login.corpId)
    const context = { corpId: app.corpId, request, log: request.log }
    const verified = await options.login(app, request.query.code, context)
    const issued = await options.start({ ...verified, surface: login.via === 'oauth' ? 'h5' : 'web' }, context)
    cookies.session(reply, issued)
    return reply.redirect(login.redirect, 302)
  })
}

/**
 * The callback's request as Fastify logs it, without its query: WeCom's single-use code and the
 * login's state travel there, and a log line is no place for either.
 */
function withoutQuery (request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: request.url.split('?')[0], host: request.host, remoteAddress: request.ip }
}
