import fastifyJwt from '@fastify/jwt'
import type { FastifyPluginAsync } from 'fastify'
import { Pool, request, type Dispatcher } from 'undici'

export interface BaselineLoginOptions {
  baseUrl: string
  /** The plugin's `api.dispatcher` when it is given one; otherwise a pool like the plugin's own. */
  dispatcher?: Dispatcher
  corp: { corpId: string, secret: string }
  jwtSecret: string
  /** Seconds. */
  expiresIn: number
}

interface WecomAnswer {
  errcode: number
  errmsg: string
  access_token?: string
  corpid?: string
  userid?: string
  name?: string
  department?: number[]
  position?: string
  status?: number
}

const httpError = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode })

/**
 * POST /login as the article in ../shared/reference/seed-article-zh.txt does it: gettoken on
 * every login, then jscode2session, a corpid check, then user/get, then a JWT. It gets the same
 * keep-alive pool as the plugin's client (64 connections to WeCom) so that only the flow differs.
 */
export const baselineLogin: FastifyPluginAsync<BaselineLoginOptions> = async (app, { baseUrl, dispatcher, corp, jwtSecret, expiresIn }) => {
  const pool = dispatcher ?? new Pool(baseUrl, { connections: 64, pipelining: 1 })
  if (dispatcher === undefined) app.addHook('onClose', async () => { await pool.close() })
  await app.register(fastifyJwt, { secret: jwtSecret, sign: { expiresIn } })

  async function wecom (path: string, query: Record<string, string>): Promise<WecomAnswer> {
    const { body } = await request(`${baseUrl}/cgi-bin/${path}?${new URLSearchParams(query).toString()}`, { dispatcher: pool })
    return await body.json() as WecomAnswer
  }

  app.post<{ Body: { code: string } }>('/login', {
    schema: {
      body: {
        type: 'object',
        required: ['code'],
        properties: { code: { type: 'string', minLength: 1, maxLength: 512 } }
      }
    }
  }, async (req) => {
    const token = await wecom('gettoken', { corpid: corp.corpId, corpsecret: corp.secret })
    if (token.errcode !== 0) throw httpError(502, `gettoken: ${token.errmsg}`)
    const accessToken = token.access_token!
    const session = await wecom('miniprogram/jscode2session', {
      access_token: accessToken, js_code: req.body.code, grant_type: 'authorization_code'
    })
    if (session.errcode !== 0) throw httpError(401, `jscode2session: ${session.errmsg}`)
    if (session.corpid !== corp.corpId) throw httpError(403, 'corp not allowed')
    const user = await wecom('user/get', { access_token: accessToken, userid: session.userid! })
    if (user.errcode !== 0 || user.status !== 1) throw httpError(403, 'no permission')
    const member = { userid: session.userid!, corpid: corp.corpId, name: user.name, department: user.department, position: user.position }
    return {
      access_token: app.jwt.sign({ userid: member.userid, corpid: member.corpid }),
      token_type: 'Bearer',
      expires_in: expiresIn,
      user: member
    }
  })
}
