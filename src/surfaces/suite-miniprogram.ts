import { corpMismatch, InvalidArgumentError, SuiteUnknownError } from '../errors.js'
import type { LoginContext, VerifiedLogin } from '../member.js'
import type { WecomMember } from '../options.js'
import type { Authorizations, InstalledCorp } from '../suites/authorizations.js'
import { forApp } from '../wecom/admission.js'
import type { WecomClient } from '../wecom/client.js'
import { tokenKey } from '../wecom/credentials.js'
import type { Deadline } from '../wecom/deadline.js'
import { jscode2session, userGet } from '../wecom/endpoints.js'
import { decide } from '../wecom/outcome.js'
import { serviceJscode2session } from '../wecom/service-endpoints.js'
import type { MemberCheck } from './member-check.js'
import { confirmInstall, requireInstall, withOpenUserid } from './suite-install.js'

export interface SuiteLoginDependencies {
  authorizations: Authorizations
  client: WecomClient
  memberCheck: MemberCheck
  /** Milliseconds all the WeCom work of one login or recheck may take (`api.timeout`). */
  timeout: number
}

/**
 * A suite's mini program's way in. A third-party suite's (doc path/92423): the code →
 * service/miniprogram/jscode2session on the suite's token → the member's corp, which must have
 * installed the suite → the member check on the corp's token. A 代开发 suite's (doc path/96959,
 * "服务商代开发 > 小程序 > code2Session"): the code → miniprogram/jscode2session on the corp's
 * 代开发 token (gettoken with its permanent code, doc path/97164), so the client names its corp
 * (`corpId`), and a code of another installed corp is answered as the several-corps rule says.
 */
export function createSuiteLogin ({ authorizations, client, memberCheck, timeout }: SuiteLoginDependencies) {
  const installedCorp = (suiteId: string | undefined, corpId: string, context: LoginContext): Promise<InstalledCorp> =>
    requireInstall(authorizations, suiteId, corpId, context)

  const thirdParty = async (suiteId: string, code: string, deadline: Deadline, context: LoginContext): Promise<VerifiedLogin> => {
    const suite = authorizations.suiteCredentials(suiteId)
    const scope = { deadline, corpId: suiteId, client: context.request?.ip }
    // The code is single-use: not spent when user/get could not follow in time.
    client.precheck([serviceJscode2session, userGet], forApp(scope, tokenKey(suite)))
    const session = await client.callSuite(serviceJscode2session, suite, { query: { js_code: code, grant_type: 'authorization_code' } }, scope)
    const answeredAt = Date.now()
    const installed = await installedCorp(suiteId, session.corpid, context)
    // A third-party code names its corp: one the client named otherwise is answered as for several corps.
    if (context.corpId !== undefined && context.corpId !== session.corpid) throw corpMismatch(session.corpid)
    const member = await memberCheck(installed.credentials, session.userid, deadline, context)
    await confirmInstall(authorizations, installed, context)
    return { member: withOpenUserid(member, session.open_userid), sessionKey: session.session_key, answeredAt, suiteId }
  }

  const custom = async (suiteId: string, code: string, deadline: Deadline, context: LoginContext): Promise<VerifiedLogin> => {
    if (context.corpId === undefined) throw new InvalidArgumentError('corpId', 'given for a 代开发 suite\'s login: the corp the mini program runs in')
    const installed = await installedCorp(suiteId, context.corpId, context)
    const corp = installed.credentials
    const scope = { deadline, corpId: corp.corpId, client: context.request?.ip }
    client.precheck([jscode2session, userGet], forApp(scope, tokenKey(corp)))
    const session = await client.callApp(jscode2session, corp, { query: { js_code: code, grant_type: 'authorization_code' } }, scope)
    const answeredAt = Date.now()
    if (session.corpid !== corp.corpId) {
      // The several-corps rule: the code is spent; the client logs in again naming its corp.
      await installedCorp(suiteId, session.corpid, context)
      throw corpMismatch(session.corpid)
    }
    const member = await memberCheck(corp, session.userid, deadline, context)
    await confirmInstall(authorizations, installed, context)
    return { member, sessionKey: session.session_key, answeredAt, suiteId }
  }

  return {
    login (code: string, context: LoginContext & { suiteId: string }): Promise<VerifiedLogin> {
      const suite = authorizations.suite(context.suiteId)
      if (suite === undefined) return Promise.reject(new SuiteUnknownError(context.suiteId))
      const flow = suite.kind === 'custom' ? custom : thirdParty
      return decide(timeout, 'login', context.log, (deadline) => flow(suite.suiteId, code, deadline, context))
    },

    /**
     * user/get on the corp's token, as at login; 403 WECOM_CORP_NOT_ALLOWED once the corp uninstalled
     * the suite. Without `suiteId` (a contact event names none), on the first suite the corp installed.
     */
    checkMember (suiteId: string | undefined, corpId: string, userid: string, context: LoginContext): Promise<WecomMember> {
      return decide(timeout, 'login', context.log, async (deadline) =>
        await memberCheck((await installedCorp(suiteId, corpId, context)).credentials, userid, deadline, context))
    },

    async installed (suiteId: string, corpId: string, startedAt: number): Promise<boolean> {
      // An install kept in a shared store by a server that served the suite is no longer this one's.
      if (authorizations.suite(suiteId) === undefined) return false
      const installed = await authorizations.installed(suiteId, corpId)
      return installed !== null && installed.corp.authorizedAt <= startedAt
    }
  }
}

export type SuiteLogin = ReturnType<typeof createSuiteLogin>
