import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import {
  CorpNotAllowedError, CorpUnknownError, InvalidCodeError, UnavailableError, UpstreamError,
  UserForbiddenError, corpMismatch
} from './errors.js'
import type { AuthorizeFn, WecomMember } from './options.js'
import { WecomApiError, WecomTransportError, type WecomClient, type WecomEndpoint } from './wecom/client.js'
import type { CorpCredentials, TokenCache } from './wecom/token-cache.js'

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
  authorize?: AuthorizeFn
}

/**
 * The three-step verification (token, jscode2session, user/get) as one decision. It speaks in
 * errors from the errors table only, so the route and `app.wecom.login()` answer alike.
 */
export function createLoginFlow ({ corps, client, tokens, authorize }: Dependencies): LoginFlow {
  const corpsById = new Map(corps.map((corp) => [corp.corpId, corp]))

  // A stale token (42001/40014/40001) is dropped only if it is still the one that failed, then
  // the call is made once more with a fresh one. Never a loop: a second failure is final.
  async function withToken<T> (corp: CorpCredentials, call: (token: string) => Promise<T>): Promise<T> {
    const token = await tokens.get(corp)
    try {
      return await call(token)
    } catch (error) {
      if (!(error instanceof WecomApiError) || error.class !== 'token') throw error
      await tokens.drop(corp, token)
      return await call(await tokens.get(corp))
    }
  }

  async function checkMember (corp: CorpCredentials, userid: string, context: LoginContext): Promise<WecomMember> {
    const info = await withToken(corp, (token) => client.getUser(token, userid))
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

  return {
    async login (code, context) {
      const corp = context.corpId === undefined ? corps[0] : corpsById.get(context.corpId)
      if (corp === undefined) throw new CorpUnknownError(String(context.corpId))
      try {
        const session = await withToken(corp, (token) => client.code2Session(token, code))
        const answeredAt = Date.now()
        if (session.corpid !== corp.corpId) {
          if (!corpsById.has(session.corpid)) {
            context.log.info({ corpId: session.corpid }, 'wecom: login from a corp this app does not serve')
            throw new CorpNotAllowedError()
          }
          // The several-corps rule: the code is spent; the client logs in again naming its corp.
          throw corpMismatch(session.corpid)
        }
        const member = await checkMember(corp, session.userid, context)
        return { member, sessionKey: session.sessionKey, answeredAt }
      } catch (error) {
        throw translate(error, context.log)
      }
    },

    async checkMember (corpId, userid, context) {
      const corp = corpsById.get(corpId)
      if (corp === undefined) throw new CorpNotAllowedError()
      try {
        return await checkMember(corp, userid, context)
      } catch (error) {
        throw translate(error, context.log)
      }
    }
  }
}

const forbiddenOn: Partial<Record<WecomEndpoint, true>> = { 'user/get': true }

/** WeCom outcomes → the errors table, with a log line an operator can act on. */
function translate (error: unknown, log: FastifyBaseLogger): unknown {
  if (error instanceof WecomTransportError) {
    if (error.kind === 'malformed') {
      log.error({ endpoint: error.endpoint }, `wecom: ${error.message}`)
      return new UpstreamError()
    }
    log.warn({ endpoint: error.endpoint }, `wecom: ${error.message}`)
    return new UnavailableError()
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
      log.warn(fields, `wecom: ${error.message}`)
      return new UnavailableError()
  }
  log.error(fields, `wecom: ${error.message} (configuration error: retrying will not help)`)
  return new UpstreamError()
}
