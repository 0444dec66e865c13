import { CorpNotAllowedError, CorpUnknownError, corpMismatch } from '../errors.js'
import { forApp } from '../wecom/admission.js'
import type { WecomClient } from '../wecom/client.js'
import { tokenKey, type CorpCredentials } from '../wecom/credentials.js'
import { jscode2session, userGet } from '../wecom/endpoints.js'
import { decide } from '../wecom/outcome.js'
import type { MemberCheck } from './member-check.js'
import type { LoginFlow } from '../member.js'

export interface MiniprogramDependencies {
  corps: readonly CorpCredentials[]
  client: WecomClient
  memberCheck: MemberCheck
  /** Milliseconds all the WeCom work of one login or recheck may take (`api.timeout`). */
  timeout: number
}

/**
 * The mini program's way in (doc path/91507): the `wx.qy.login` code → jscode2session on the
 * corp app's token → a corp this server serves → the member check. Each login and each recheck
 * runs under one deadline of `timeout` ms and speaks in errors from the errors table only, so the
 * route and `app.wecom.login()` answer alike.
 */
export function createMiniprogramLogin ({ corps, client, memberCheck, timeout }: MiniprogramDependencies): LoginFlow {
  const corpsById = new Map(corps.map((corp) => [corp.corpId, corp]))

  return {
    login (code, context) {
      const corp = context.corpId === undefined ? corps[0] : corpsById.get(context.corpId)
      if (corp === undefined) return Promise.reject(new CorpUnknownError(String(context.corpId)))
      return decide(timeout, 'login', context.log, async (deadline) => {
        const scope = { deadline, corpId: corp.corpId, client: context.request?.ip }
        // The code is single-use: not spent on jscode2session when user/get could not follow in time.
        client.precheck([jscode2session, userGet], forApp(scope, tokenKey(corp)))
        const session = await client.callApp(jscode2session, corp, { query: { js_code: code, grant_type: 'authorization_code' } }, scope)
        const answeredAt = Date.now()
        if (session.corpid !== corp.corpId) {
          if (!corpsById.has(session.corpid)) {
            context.log.info({ corpId: session.corpid }, 'wecom: login from a corp this app does not serve')
            throw new CorpNotAllowedError()
          }
          // The several-corps rule: the code is spent; the client logs in again naming its corp.
          throw corpMismatch(session.corpid)
        }
        const member = await memberCheck(corp, session.userid, deadline, context)
        return { member, sessionKey: session.session_key, answeredAt }
      })
    },

    checkMember (corpId, userid, context) {
      const corp = corpsById.get(corpId)
      if (corp === undefined) return Promise.reject(new CorpNotAllowedError())
      return decide(timeout, 'login', context.log, (deadline) => memberCheck(corp, userid, deadline, context))
    }
  }
}
