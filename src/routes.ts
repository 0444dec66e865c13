import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { RETRY_AFTER_SECONDS, errorExtras } from './errors.js'
import { kClaims, type Authenticate } from './guard.js'
import type { LoginFlow } from './login.js'
import type { Sessions } from './sessions/sessions.js'

export interface RoutesOptions {
  loginFlow: LoginFlow
  sessions: Sessions
  authenticate: Authenticate
}

const refreshToken = z.string().min(1).max(256)
const loginBody = z.object({ code: z.string().min(1).max(512), corpId: z.string().min(1).max(64).optional() })
const refreshBody = z.object({ refresh_token: refreshToken })
const logoutBody = z.object({ refresh_token: refreshToken.optional() }).nullish()

/**
 * /login, /refresh and /logout. Registered as an encapsulated child so that the zod compilers
 * and the error handler set here never reach the host's own routes.
 */
export async function wecomRoutes (child: FastifyInstance, { loginFlow, sessions, authenticate }: RoutesOptions): Promise<void> {
  child.setValidatorCompiler(validatorCompiler)
  child.setSerializerCompiler(serializerCompiler)
  child.setErrorHandler(answerError)
  const routes = child.withTypeProvider<ZodTypeProvider>()

  routes.post('/login', { schema: { body: loginBody } }, async (request) => {
    const context = { corpId: request.body.corpId, request, log: request.log }
    const verified = await loginFlow.login(request.body.code, context)
    return sessions.start(verified, request.log)
  })

  routes.post('/refresh', { schema: { body: refreshBody } }, async (request) =>
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
        await sessions.endByRefreshToken(presented)
      } else {
        await runHook(authenticate, request, reply)
        await sessions.revokeSession(request[kClaims]!.sid)
      }
      reply.code(204).send()
    })
  })
}

function runHook (hook: Authenticate, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  return new Promise((resolve, reject) => hook(request, reply, (error) => error === undefined ? resolve() : reject(error)))
}

/** Our errors get their Retry-After and extra fields here; everything else goes to the host's handler. */
function answerError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): unknown {
  if (!error.code?.startsWith('WECOM_')) throw error
  const statusCode = error.statusCode ?? 500
  if (statusCode === 503) {
    request.log.warn({ code: error.code }, error.message)
    reply.header('retry-after', RETRY_AFTER_SECONDS)
  }
  return reply.code(statusCode).send({
    statusCode, code: error.code, error: STATUS_CODES[statusCode], message: error.message, ...errorExtras(error)
  })
}
