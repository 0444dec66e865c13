import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import {
  CorpNotAllowedError, CorpUnknownError, InvalidCodeError, UpstreamError, UserForbiddenError,
  corpMismatch, unavailable
} from './errors.js'
import type { AuthorizeFn, WecomMember } from './options.js'
import { failureOf, withToken } from './wecom/api.js'
import { WecomApiError, type WecomClient, type WecomEndpoint } from './wecom/client.js'
import { withDeadline, type Deadline } from './wecom/deadline.js'
import { tokenKey, type CorpCredentials, type TokenCache } from './wecom/token-cache.js'

export interface VerifiedLogin {
  member: WecomMember
  /** WeCom's session_key for this member: for the vault only, never for a reply. */
  sessionKey: string
  /** Epoch ms when WeCom answered jscode2session: of a member's session_keys, the latest answer's is kept. */
  answeredAt: number
}

export interface LoginContext {
  corpId?: string
  request?: FastifyRequest
  log: FastifyBaseLogger
}

export interface LoginFlow {
  /** code → verified member, or a typed refusal from the errors table. */
  login (code: string, context: LoginContext): Promise<VerifiedLogin>
  /** user/get + status + authorize, as at login: for rechecks of a living session. */
  checkMember (corpId: string, userid: string, context: LoginContext): Promise<WecomMember>
}

interface Dependencies {
  corps: readonly CorpCredentials[]
  client: WecomClient
  tokens: TokenCache
  /** Milliseconds all the WeCom work of one login or recheck may take (`api.timeout`). */
  timeout: number
  authorize?: AuthorizeFn
}

/**
 * The three-step verification (token, jscode2session, user/get) as one decision. It speaks in
 * errors from the errors table only, so the route and `app.wecom.login()` answer alike. Each
 * login and each recheck runs under one deadline of `timeout` ms, whatever WeCom does.
 */
export function createLoginFlow ({ corps, client, tokens, timeout, authorize }: Dependencies): LoginFlow {
  const corpsById = new Map(corps.map((corp) => [corp.corpId, corp]))
  const calls = { client, tokens }

  async function checkMember (corp: CorpCredentials, userid: string, deadline: Deadline, context: LoginContext): Promise<WecomMember> {
    const info = await withToken(calls, corp, deadline, 'user/get', (token, scope) => client.getUser(token, userid, scope))
    if (info.status !== undefined && info.status !== 1) {
      context.log.info({ corpId: corp.corpId, userid, status: info.status }, 'wecom: member is not active')
      throw new UserForbiddenError()
    }
    const member: WecomMember = { userid: info.userid, corpid: corp.corpId }
    if (info.name !== undefined) member.name = info.name
    if (info.department !== undefined) member.department = info.department
    if (info.position !== undefined) member.position = info.position
    if (authorize !== undefined && await authorize(member, context.request) !== true) {
      context.log.info({ corpId: corp.corpId, userid }, 'wecom: member refused by authorize')
      throw new UserForbiddenError()
    }
    return member
  }

  /** Runs `work` under a fresh deadline and answers in the errors table's terms. */
  async function decide<T> (log: FastifyBaseLogger, work: (deadline: Deadline) => Promise<T>): Promise<T> {
    try {
      return await withDeadline(timeout, work)
    } catch (error) {
      throw translate(error, log)
    }
  }

  return {
    login (code, context) {
      const corp = context.corpId === undefined ? corps[0] : corpsById.get(context.corpId)
      if (corp === undefined) return Promise.reject(new CorpUnknownError(String(context.corpId)))
      return decide(context.log, async (deadline) => {
        // The code is single-use: not spent on jscode2session when user/get is known to fail now.
        client.precheck(['jscode2session', 'user/get'], { corpId: corp.corpId, app: tokenKey(corp) })
        const session = await withToken(calls, corp, deadline, 'jscode2session', (token, scope) => client.code2Session(token, code, scope))
        const answeredAt = Date.now()
        if (session.corpid !== corp.corpId) {
          if (!corpsById.has(session.corpid)) {
            context.log.info({ corpId: session.corpid }, 'wecom: login from a corp this app does not serve')
            throw new CorpNotAllowedError()
          }
          // The several-corps rule: the code is spent; the client logs in again naming its corp.
          throw corpMismatch(session.corpid)
        }
        const member = await checkMember(corp, session.userid, deadline, context)
        return { member, sessionKey: session.sessionKey, answeredAt }
      })
    },

    checkMember (corpId, userid, context) {
      const corp = corpsById.get(corpId)
      if (corp === undefined) return Promise.reject(new CorpNotAllowedError())
      return decide(context.log, (deadline) => checkMember(corp, userid, deadline, context))
    }
  }
}

const forbiddenOn: Partial<Record<WecomEndpoint, true>> = { 'user/get': true }

/**
 * WeCom outcomes → the errors table. WeCom's own trouble was logged by the client, once per change
 * (src/wecom/client.ts): here it is logged at debug only, or an outage would write a line per login.
 */
function translate (error: unknown, log: FastifyBaseLogger): unknown {
  const failure = failureOf(error)
  if (failure !== undefined) {
    const { endpoint, reason } = error as { endpoint?: string, reason?: string }
    log.debug({ endpoint, reason }, `wecom: ${(error as Error).message}`)
    return failure
  }
  if (!(error instanceof WecomApiError)) return error
  const fields = { endpoint: error.endpoint, errcode: error.errcode, hint: error.hint }
  switch (error.class) {
    case 'code':
      log.info(fields, `wecom: ${error.message}`)
      return new InvalidCodeError()
    case 'forbidden':
      if (forbiddenOn[error.endpoint] === true) {
        log.info(fields, `wecom: ${error.message}`)
        return new UserForbiddenError()
      }
      break
    case 'retry':
    case 'limited':
      log.debug(fields, `wecom: ${error.message}`)
      return unavailable()
  }
  log.debug(fields, `wecom: ${error.message}`)
  return new UpstreamError()
}
