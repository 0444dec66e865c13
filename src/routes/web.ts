import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CorpUnknownError, InvalidArgumentError, InvalidCodeError, SuiteUnknownError, WebNotConfiguredError } from '../errors.js'
import type { LoginContext, VerifiedLogin } from '../member.js'
import type { IssuedTokens } from '../sessions/sessions.js'
import { authorizeUrl, type OAuthScope, type PageApp, type WebAppCredentials } from '../surfaces/oauth.js'
import { loginPanelParams, ssoUrl } from '../surfaces/sso.js'
import type { SuiteWebLogin } from '../surfaces/suite-web.js'
import { cookieValue, type Cookies } from '../web/cookies.js'
import { allowedRedirect } from '../web/redirects.js'
import type { LoginState, LoginStates, WebVia } from '../web/state.js'

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
  /** The suites' pages, with `suites`: a third-party suite's own, a 代开发 suite's app in a corp. */
  suites?: SuiteWebLogin
  /** A session for a verified login (sessions.start, with its span). */
  start (login: VerifiedLogin, context: LoginContext): Promise<IssuedTokens>
  schemas: { webLogin: object, webLoginParams: object, webCallback: object }
  config: object
}

interface LoginQuery { corpId?: string, suiteId?: string, redirect?: string, scope?: OAuthScope, via?: WebVia }

/** Where a login goes: the pages of a corp's app or of a third-party suite, and what its state carries back. */
interface Begun { page: PageApp, login: Pick<LoginState, 'corpId' | 'suiteId' | 'redirect'> }

/** WeCom's in-app browser says so in its User-Agent (wxwork); anything else is a PC browser. */
const INSIDE_WECOM = /\bwxwork\//i

/**
 * The browser's way in: /web/login (302 to WeCom's page), /web/login/params (an embedded QR
 * panel's), /web/callback (WeCom's redirect back: state, code, member, cookies, 302).
 */
export async function webRoutes (child: FastifyInstance, options: WebRoutesOptions): Promise<void> {
  const { apps, states, cookies, schemas, config } = options
  const [firstCorp] = apps.keys()

  /**
   * The login's pages and redirect, refused (400) before anything else when either is not allowed:
   * a corp's web app; a 代开发 suite's app in the corp that installed it (403 otherwise); a
   * third-party suite's own pages, whose corp WeCom names at the callback.
   */
  async function begin (query: LoginQuery, context: LoginContext): Promise<Begun> {
    const redirect = allowedRedirect(query.redirect, options.redirects)
    const { suiteId } = query
    if (suiteId === undefined || options.suites === undefined) {
      if (suiteId !== undefined) throw new SuiteUnknownError(suiteId)
      const app = corpApp(query.corpId ?? firstCorp)
      return { page: { appid: app.corpId, agentId: app.agentId }, login: { corpId: app.corpId, redirect } }
    }
    if (options.suites.kind(suiteId) === 'third-party') return { page: { appid: suiteId }, login: { corpId: '', suiteId, redirect } }
    if (query.corpId === undefined) throw new InvalidArgumentError('corpId', 'given for a 代开发 suite\'s pages: the corp that installed it')
    const app = await options.suites.app(suiteId, query.corpId, context)
    return { page: { appid: app.corpId, agentId: app.agentId }, login: { corpId: app.corpId, suiteId, redirect } }
  }

  function corpApp (corpId: string | undefined): WebAppCredentials {
    // With suites alone, no corp's web app to fall back on.
    if (corpId === undefined) throw new InvalidArgumentError('suiteId', 'given: no corp of this server has a web app')
    const app = apps.get(corpId)
    if (app !== undefined) return app
    throw options.corpIds.has(corpId) ? new WebNotConfiguredError(`corpId ${corpId}`) : new CorpUnknownError(corpId)
  }

  // Not the Host header as it came: a forged one must not name where WeCom sends the code.
  const [firstOrigin] = options.origins
  function callbackUrl (request: FastifyRequest): string {
    const origin = `${request.protocol}://${request.host}`
    return `${options.origins.has(origin) ? origin : firstOrigin}${options.callbackPath}`
  }

  child.get<{ Querystring: LoginQuery }>('/web/login', { schema: schemas.webLogin, config }, async (request, reply) => {
    const { page, login } = await begin(request.query, { request, log: request.log })
    const via = request.query.via ?? (INSIDE_WECOM.test(request.headers['user-agent'] ?? '') ? 'oauth' : 'sso')
    const scope = request.query.scope ?? 'snsapi_base'
    const { state, cookie } = states.issue(Object.assign({}, login, { scope, via }))
    cookies.state(reply, cookie)
    const target = via === 'oauth'
      ? authorizeUrl(options.urls.authorize, page, callbackUrl(request), scope, state)
      : ssoUrl(options.urls.sso, page, callbackUrl(request), state)
    return reply.header('cache-control', 'no-store').redirect(target, 302)
  })

  child.get<{ Querystring: LoginQuery }>('/web/login/params', { schema: schemas.webLoginParams, config }, async (request, reply) => {
    const { page, login } = await begin(request.query, { request, log: request.log })
    const { state, cookie } = states.issue(Object.assign({}, login, { scope: 'snsapi_base' as const, via: 'sso' as const }))
    cookies.state(reply, cookie)
    reply.header('cache-control', 'no-store')
    return loginPanelParams(page, callbackUrl(request), state)
  })

  /** The member a callback's code names, through the pages the login was started for. */
  async function verify (login: LoginState, code: string, context: LoginContext): Promise<VerifiedLogin> {
    const { suiteId } = login
    if (suiteId === undefined) {
      const app = apps.get(login.corpId)
      // A corp's web app removed from the options between the redirect and the callback.
      if (app === undefined) throw new WebNotConfiguredError(`corpId ${login.corpId}`)
      return await options.login(app, code, context)
    }
    // The suite removed from the options between the redirect and the callback.
    if (options.suites === undefined) throw new SuiteUnknownError(suiteId)
    if (options.suites.kind(suiteId) === 'third-party') return await options.suites.login(suiteId, code, context)
    return await options.suites.custom(suiteId, login.corpId, context, (app) => options.login(app, code, context))
  }

  child.get<{ Querystring: { code?: string, state?: string } }>('/web/callback', { schema: schemas.webCallback, config, logSerializers: { req: withoutQuery } }, async (request, reply) => {
    // Spent whatever follows: a state serves one callback, and a failed one starts again.
    cookies.clearState(reply)
    reply.header('cache-control', 'no-store')
    // A callback without a code claims no state: it could only crowd out the claims of real ones.
    if (request.query.code === undefined) throw new InvalidCodeError()
    const login = await states.consume(request.query.state, cookieValue(request, cookies.names.state))
    const context = { corpId: login.corpId === '' ? undefined : login.corpId, request, log: request.log }
    const verified = await verify(login, request.query.code, context)
    const issued = await options.start(Object.assign({}, verified, { surface: login.via === 'oauth' ? 'h5' as const : 'web' as const }), context)
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
