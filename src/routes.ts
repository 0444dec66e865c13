import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AjvCompiler } from '@fastify/ajv-compiler'
import fastifyRateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit'
import { CorpNotAllowedError, errorExtras, isWecomError, RefreshInvalidError, UserForbiddenError } from './errors.js'
import { CALLBACK_BODY_LIMIT, openEvent, verifyUrl, type CallbackCorp, type CallbackQuery, type WecomEvent } from './events/callback.js'
import { kByCookie, kClaims, type Authenticate } from './guard.js'
import type { LoginContext } from './member.js'
import { swaggerTransform } from './openapi.js'
import { routeSchemas, type DocsOptions } from './schemas.js'
import type { IssuedTokens, Sessions } from './sessions/sessions.js'
import { jssdkRoutes } from './routes/jssdk.js'
import { sessionRoutes } from './routes/sessions.js'
import { suiteCallbackRoutes, type SuiteCallbackRouteOptions } from './routes/suite-callback.js'
import { webRoutes, type WebRoutesOptions } from './routes/web.js'
import type { WecomClient } from './wecom/client.js'
import { cookieValue, createCookies, type Cookies } from './web/cookies.js'
import { checkOrigin } from './web/csrf.js'
import type { WebOptions } from './web/options.js'

export interface RoutesOptions {
  login (code: string, context: LoginContext): Promise<IssuedTokens>
  refresh (refreshToken: string, context: LoginContext): Promise<IssuedTokens>
  sessions: Sessions
  authenticate: Authenticate
  /** @fastify/rate-limit options for /login and /refresh, or false. */
  rateLimit: RateLimitPluginOptions | false
  /** How the routes appear in the host's OpenAPI document. */
  docs: DocsOptions
  /** The public keys of the access tokens, served at /.well-known/jwks.json when there are any. */
  jwks?: { keys: readonly object[] }
  /** WeCom's callback, when a corp has one: its corps, and what a verified event does. */
  callback?: {
    corps: readonly CallbackCorp[]
    handle (corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void>
  }
  /** The suites' command callback, with `suites`. */
  suiteCallback?: Omit<SuiteCallbackRouteOptions, 'schemas' | 'config'>
  /** The browser surfaces, when a corp has `web`: the routes, and refresh and logout by cookie. */
  web?: Omit<WebRoutesOptions, 'schemas' | 'config' | 'cookies' | 'callbackPath'> & { options: WebOptions, origins: ReadonlySet<string>, client: WecomClient, timeout: number }
}

/**
 * Fastify's own ajv and defaults, without type coercion (a number is no login code). The plugin's
 * own, so that a validator the host set on its root (zod's, a tuned ajv) never compiles these
 * schemas, while the errors still read as Fastify's: `body must have required property 'code'`.
 */
const validatorCompiler = AjvCompiler()({}, { customOptions: { coerceTypes: false } })

/** Seconds a verifier may cache the JWKS. */
const JWKS_MAX_AGE = 300

/** Fastify's error body, `{ statusCode, code, error, message }`, and the fields an error adds (the 409's corpId). */
function errorBody (error: FastifyError, statusCode = error.statusCode ?? 500): Record<string, unknown> {
  return { statusCode, code: error.code, error: STATUS_CODES[statusCode], message: error.message, ...errorExtras(error) }
}

/**
 * Bodies as JSON.stringify writes them. An error that Fastify's default handler answers arrives
 * here as an Error, since the routes document a schema for each error status, and is written as
 * Fastify writes it; what a host's own error handler sends is written as it sent it.
 */
function serialize (data: unknown): string {
  return JSON.stringify(data instanceof Error ? errorBody(data as FastifyError) : data)
}

/**
 * /login, /refresh, /logout, the JWKS and the callback. Registered as an encapsulated child so
 * that the compilers and the error handler set here never reach the host's own routes.
 */
export async function wecomRoutes (child: FastifyInstance, { login, refresh, sessions, authenticate, rateLimit, docs, jwks, callback, suiteCallback, web }: RoutesOptions): Promise<void> {
  child.setValidatorCompiler(validatorCompiler)
  child.setSerializerCompiler(() => serialize)
  // A host with its own error handler gets every error: it carries its headers and fields (src/errors.ts).
  // Without one, the plugin answers its own errors as Fastify's default handler would, but without
  // its error line per 5xx: an outage is logged once where it was found, not once per login.
  // `errorHandler` is the inherited handler until this child sets its own; Fastify's is named so.
  if (child.errorHandler.name === 'defaultErrorHandler') child.setErrorHandler(answerError)
  // Inside this child: the host's own routes are not limited, nor is its @fastify/rate-limit touched.
  if (rateLimit !== false) await child.register(fastifyRateLimit, rateLimit)
  // The routes' real paths (a host may register the plugin under a prefix of its own): where the
  // browser must send each cookie, and WeCom the code.
  const base = child.prefix.replace(/\/+$/, '')
  const paths = { callback: `${base}/web/callback`, refresh: `${base}/refresh` }
  const cookies = web === undefined ? undefined : createCookies(web.options, paths)
  const schemas = routeSchemas(docs, web !== undefined)
  // Every well-formed code costs a jscode2session call: one client must not spend the corp's quota.
  // @fastify/swagger reads the transform per route: the host's own transform is not for these schemas.
  const documented: Record<string, unknown> = { swaggerTransform }
  const limited = { rateLimit: rateLimit === false ? false : {}, ...documented }

  child.post<{ Body: { code: string, corpId?: string, suiteId?: string } }>('/login', { schema: schemas.login, config: limited }, async (request): Promise<IssuedTokens> => {
    return login(request.body.code, { corpId: request.body.corpId, suiteId: request.body.suiteId, request, log: request.log })
  })

  const refreshRoute = (child: FastifyInstance) => refreshRoutes(child, { refresh, web, cookies, schema: schemas.refresh, config: limited })
  // With cookies, an empty body is a cookie refresh: /refresh joins /logout's JSON parser below.
  if (web === undefined) refreshRoute(child)

  // A context of its own for the JSON parser below, which must not reach /login and /refresh.
  await child.register(async (child) => {
    // A client that always sends `Content-Type: application/json` sends it with the empty body
    // of a bearer logout or a DELETE too: that is no body, not malformed JSON.
    const json = child.getDefaultJsonParser('error', 'error')
    child.removeContentTypeParser('application/json')
    child.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') done(null, null)
      else json(request, body as string, done)
    })
    if (web !== undefined) refreshRoute(child)
    // The sessions' DELETEs take no body: one sent empty with a JSON type is none too.
    await sessionRoutes(child, { sessions, authenticate, cookies, schemas, config: documented })
    child.post<{ Body: { refresh_token?: string } | null }>('/logout', { schema: schemas.logout, config: documented, preValidation: noBodyIsNull }, async (request, reply) => {
      const presented = request.body?.refresh_token
      if (presented !== undefined) {
        // RFC 7009: the same 204 whether the token named a live session or not, so that the
        // answer tells nothing about a token.
        await sessions.endByRefreshToken(presented, { request })
      } else {
        // By cookie, authenticate itself refuses a POST from a page not on web.origins.
        await runHook(authenticate, request, reply)
        const { sid, userid, corpid } = request[kClaims]!
        await sessions.logout({ userid, corpid }, sid, { request })
        if (request[kByCookie]) cookies!.clearSession(reply)
      }
      reply.code(204).send()
    })
  })

  if (jwks !== undefined) {
    const body = JSON.stringify(jwks)
    child.get('/.well-known/jwks.json', { schema: schemas.jwks, config: documented }, async (_request, reply) =>
      // Cached by verifiers for a while: a new key is published before it signs (README, Key rotation).
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE}`).type('application/json; charset=utf-8').send(body))
  }

  if (callback !== undefined) await child.register(async (child) => callbackRoutes(child, callback, schemas, documented))
  if (suiteCallback !== undefined) {
    await child.register(async (child) => {
      xmlBodies(child)
      await suiteCallbackRoutes(child, { ...suiteCallback, schemas: { check: schemas.suiteCallbackCheck, push: schemas.suiteCallbackPush }, config: documented })
    })
  }
  if (web !== undefined) {
    await webRoutes(child, { ...web, cookies: cookies!, callbackPath: paths.callback, schemas, config: limited })
    await jssdkRoutes(child, { ...web, authenticate, schema: schemas.jssdkSignature, config: documented })
  }
}

/** WeCom posts XML to its callbacks: read as text within a small limit; JSON is not taken. */
function xmlBodies (child: FastifyInstance): void {
  child.removeAllContentTypeParsers()
  child.addContentTypeParser('*', { parseAs: 'string', bodyLimit: CALLBACK_BODY_LIMIT }, (_request, body, done) => done(null, body))
}

/**
 * WeCom's callback, `GET` (the URL check when the admin saves it) and `POST` (events), in a context
 * of its own: WeCom posts XML, read here as text within a small limit, and JSON is not taken.
 */
async function callbackRoutes (child: FastifyInstance, callback: NonNullable<RoutesOptions['callback']>, schemas: ReturnType<typeof routeSchemas>, config: object): Promise<void> {
  xmlBodies(child)
  child.get('/callback', { schema: schemas.callbackCheck, config }, async (request, reply) => {
    const echo = verifyUrl(callback.corps, request.query as CallbackQuery, Date.now())
    return reply.type('text/plain; charset=utf-8').send(echo)
  })
  child.post('/callback', { bodyLimit: CALLBACK_BODY_LIMIT, schema: schemas.callbackEvent, config }, async (request, reply) => {
    const { corpId, event } = openEvent(callback.corps, request.query as CallbackQuery, request.body, Date.now())
    await callback.handle(corpId, event, request)
    // WeCom's acknowledgement: anything else, or no answer within 5 s, and it resends.
    return reply.type('text/plain; charset=utf-8').send('success')
  })
}

/**
 * POST /refresh: the refresh token in the body, or with `web` and no body, the refresh cookie (a
 * browser's, so from one of its pages only; the new tokens stay in HttpOnly cookies, 204).
 */
function refreshRoutes (child: FastifyInstance, { refresh, web, cookies, schema, config }: {
  refresh: RoutesOptions['refresh']
  web: RoutesOptions['web']
  cookies: Cookies | undefined
  schema: object
  config: object
}): void {
  child.post<{ Body: { refresh_token?: string } | null }>('/refresh', { schema, config, preValidation: noBodyIsNull }, async (request, reply) => {
    const presented = request.body?.refresh_token
    if (presented !== undefined || web === undefined || cookies === undefined) return refresh(presented!, { request, log: request.log })
    const byCookie = cookieValue(request, cookies.names.refresh)
    if (byCookie === undefined) throw new RefreshInvalidError()
    checkOrigin(request, web.origins)
    try {
      cookies.session(reply, await refresh(byCookie, { request, log: request.log }))
    } catch (error) {
      if (ENDS_SESSION.has((error as { code?: string }).code ?? '')) cookies.clearSession(reply)
      throw error
    }
    return reply.code(204).send()
  })
}

/**
 * The refusals of a refresh after which its session is gone (rotation.ts ends it): a browser keeps
 * no cookie of it. Not a 503 or a 429, after which the same cookie may try again.
 */
const ENDS_SESSION: ReadonlySet<string> = new Set([RefreshInvalidError, UserForbiddenError, CorpNotAllowedError].map((Refusal) => new Refusal().code))

/** No body at all is the same as an empty one: the schemas take null, not undefined. */
async function noBodyIsNull (request: FastifyRequest): Promise<void> {
  request.body ??= null
}

function runHook (hook: Authenticate, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  return new Promise((resolve, reject) => hook(request, reply, (error) => error === undefined ? resolve() : reject(error)))
}

/** The plugin's errors, when the host has no error handler of its own; anything else goes to Fastify's. */
function answerError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): unknown {
  if (!isWecomError(error)) throw error
  const statusCode = error.statusCode ?? 500
  // WeCom's and the store's trouble (502, 503) was logged where it was found, once per change; a
  // 500 is a bug (the host's extendClaims, a hook) and logged nowhere else, as Fastify's handler would.
  if (statusCode === 500) request.log.error({ err: error }, error.message)
  const { headers } = error as { headers?: Record<string, string> }
  return reply.code(statusCode).headers(headers ?? {}).send(errorBody(error))
}
