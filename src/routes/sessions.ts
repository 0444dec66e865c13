import type { FastifyInstance } from 'fastify'
import { kByCookie, kClaims, type Authenticate } from '../guard.js'
import type { Sessions } from '../sessions/sessions.js'
import type { Cookies } from '../web/cookies.js'

export interface SessionRoutesOptions {
  sessions: Sessions
  authenticate: Authenticate
  /** The session cookies, with `web`: cleared when a browser ends its own current session. */
  cookies?: Cookies
  schemas: { sessionsList: object, sessionsEndOne: object, sessionsEndOthers: object }
  config: object
}

/**
 * The signed-in member's own sessions, whatever surface made them: GET /sessions lists them,
 * DELETE /sessions/:sid ends one (a sid not theirs ends nothing, answered alike), DELETE /sessions
 * ends all but the current one. By cookie, authenticate itself refuses the DELETEs from a page not
 * on web.origins.
 */
export async function sessionRoutes (child: FastifyInstance, { sessions, authenticate, cookies, schemas, config }: SessionRoutesOptions): Promise<void> {
  child.get('/sessions', { schema: schemas.sessionsList, config, onRequest: authenticate }, async (request) => {
    const { corpid, userid, sid } = request[kClaims]!
    return { sessions: await sessions.list(corpid, userid, sid) }
  })

  child.delete<{ Params: { sid: string } }>('/sessions/:sid', { schema: schemas.sessionsEndOne, config, onRequest: authenticate }, async (request, reply) => {
    const { corpid, userid, sid: current } = request[kClaims]!
    await sessions.end(corpid, userid, (sid) => sid !== request.params.sid, { request })
    // A browser that ended its own session keeps no dead tokens.
    if (request.params.sid === current && request[kByCookie]) cookies?.clearSession(reply)
    return reply.code(204).send()
  })

  child.delete('/sessions', { schema: schemas.sessionsEndOthers, config, onRequest: authenticate }, async (request, reply) => {
    const { corpid, userid, sid: current } = request[kClaims]!
    await sessions.end(corpid, userid, (sid) => sid === current, { request })
    return reply.code(204).send()
  })
}
