import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import fastifyRateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit'
import { RETRY_AFTER_SECONDS, errorExtras, retryAfterOf } from './errors.js'
import { CALLBACK_BODY_LIMIT, openEvent, verifyUrl, type CallbackCorp, type CallbackQuery, type WecomEvent } from './events/callback.js'
import { kClaims, type Authenticate } from './guard.js'
import type { LoginFlow } from './login.js'
import type { Sessions } from './sessions/sessions.js'

export interface RoutesOptions {
  loginFlow: LoginFlow
  sessions: Sessions
  authenticate: Authenticate
  /** @fastify/rate-limit options for /login and /refresh, or false. */
  rateLimit: RateLimitPluginOptions | false
  /** WeCom's callback, when a corp has one: its corps, and what a verified event does. */
  callback?: {
    corps: readonly CallbackCorp[]
    handle (corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void>
  }
}

/**
 * Printable ASCII, bounded in characters, which for ASCII are UTF-16 units and bytes alike:
 * codes and corpIds are ASCII, and a bound counted in code points would let 512 emoji (2 KiB of
 * query string) through to WeCom.
 */
const ascii = (max: number) => z.string().min(1).max(max).regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII' })

const refreshToken = z.string().min(1).max(256)
const loginBody = z.object({ code: ascii(512), corpId: ascii(64).optional() })
const refreshBody = z.object({ refresh_token: refreshToken })
// Logout is idempotent (RFC 7009 §2.2): a token that cannot be one of ours ends nothing, and is
// answered 204 like any other unknown token, not 400; the bound only stops an absurd body.
const logoutBody = z.object({ refresh_token: z.string().max(4096).optional() }).nullish()

/**
 * /login, /refresh and /logout. Registered as an encapsulated child so that the zod compilers
 * and the error handler set here never reach the host's own routes.
 */
export async function wecomRoutes (child: FastifyInstance, { loginFlow, sessions, authenticate, rateLimit, callback }: RoutesOptions): Promise<void> {
  child.setValidatorCompiler(validatorCompiler)
  child.setSerializerCompiler(serializerCompiler)
  child.setErrorHandler(answerError)
  // Inside this child: the host's own routes are not limited, nor is its @fastify/rate-limit touched.
  if (rateLimit !== false) await child.register(fastifyRateLimit, rateLimit)
  const routes = child.withTypeProvider<ZodTypeProvider>()
  // Every well-formed code costs a jscode2session call: one client must not spend the corp's quota.
  const limited = { rateLimit: rateLimit === false ? false : {} }

  routes.post('/login', { schema: { body: loginBody }, config: limited }, async (request) => {
    const context = { corpId: request.body.corpId, request, log: request.log }
    const verified = await loginFlow.login(request.body.code, context)
    return sessions.start(verified, context)
  })

  routes.post('/refresh', { schema: { body: refreshBody }, config: limited }, async (request) =>
    sessions.refresh(request.body.refresh_token, { request, log: request.log }))

  // A context of its own for the JSON parser below, which must not reach /login and /refresh.
  await routes.register(async (child) => {
    // A client that always sends `Content-Type: application/json` sends it with the empty body
    // of a bearer logout too: that is no body, not malformed JSON.
    const json = child.getDefaultJsonParser('error', 'error')
    child.removeContentTypeParser('application/json')
    child.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') done(null, null)
      else json(request, body as string, done)
    })
    child.withTypeProvider<ZodTypeProvider>().post('/logout', { schema: { body: logoutBody } }, async (request, reply) => {
      const presented = request.body?.refresh_token
      if (presented !== undefined) {
        // RFC 7009: the same 204 whether the token named a live session or not, so that the
        // answer tells nothing about a token.
        await sessions.endByRefreshToken(presented, { request })
      } else {
        await runHook(authenticate, request, reply)
        const { sid, userid, corpid } = request[kClaims]!
        await sessions.logout({ userid, corpid }, sid, { request })
      }
      reply.code(204).send()
    })
  })

  if (callback !== undefined) await routes.register(async (child) => callbackRoutes(child, callback))
}

/**
 * WeCom's callback, `GET` (the URL check when the admin saves it) and `POST` (events), in a context
 * of its own: WeCom posts XML, read here as text within a small limit, and JSON is not taken.
 */
async function callbackRoutes (child: FastifyInstance, callback: NonNullable<RoutesOptions['callback']>): Promise<void> {
  child.removeAllContentTypeParsers()
  child.addContentTypeParser('*', { parseAs: 'string', bodyLimit: CALLBACK_BODY_LIMIT }, (_request, body, done) => done(null, body))
  child.get('/callback', async (request, reply) => {
    const echo = verifyUrl(callback.corps, request.query as CallbackQuery, Date.now())
    return reply.type('text/plain; charset=utf-8').send(echo)
  })
  child.post('/callback', { bodyLimit: CALLBACK_BODY_LIMIT }, async (request, reply) => {
    const { corpId, event } = openEvent(callback.corps, request.query as CallbackQuery, request.body, Date.now())
    await callback.handle(corpId, event, request)
    // WeCom's acknowledgement: anything else, or no answer within 5 s, and it resends.
    return reply.type('text/plain; charset=utf-8').send('success')
  })
}

function runHook (hook: Authenticate, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  return new Promise((resolve, reject) => hook(request, reply, (error) => error === undefined ? resolve() : reject(error)))
}

/** Our errors get their Retry-After and extra fields here; everything else goes to the host's handler. */
function answerError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): unknown {
  if (!error.code?.startsWith('WECOM_')) throw error
  const statusCode = error.statusCode ?? 500
  // Not logged here: the cause was logged where it was found, once per outage or window.
  if (statusCode === 503) reply.header('retry-after', retryAfterOf(error) ?? RETRY_AFTER_SECONDS)
  return reply.code(statusCode).send({
    statusCode, code: error.code, error: STATUS_CODES[statusCode], message: error.message, ...errorExtras(error)
  })
}
