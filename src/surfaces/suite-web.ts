import { CorpNotAllowedError, SuiteUnknownError, UserForbiddenError } from '../errors.js'
import type { LoginContext, VerifiedLogin } from '../member.js'
import type { Authorizations, InstalledCorp } from '../suites/authorizations.js'
import { forApp } from '../wecom/admission.js'
import type { WecomClient } from '../wecom/client.js'
import { tokenKey } from '../wecom/credentials.js'
import { userGet } from '../wecom/endpoints.js'
import { decide } from '../wecom/outcome.js'
import { getUserDetail3rd, getUserInfo3rd } from '../wecom/service-endpoints.js'
import type { MemberCheck } from './member-check.js'
import type { WebAppCredentials } from './oauth.js'
import { confirmInstall, requireInstall, withOpenUserid } from './suite-install.js'

export interface SuiteWebDependencies {
  authorizations: Authorizations
  client: WecomClient
  memberCheck: MemberCheck
  /** Milliseconds all the WeCom work of one login may take (`api.timeout`). */
  timeout: number
}

/**
 * A suite's pages' way in. A third-party suite's pages are the suite's own (appid its SuiteID,
 * login_type=ServiceApp on the PC: doc path/91120, path/98176): their code →
 * service/auth/getuserinfo3rd on the suite's token (doc path/91121) → the member's corp, which
 * must have installed the suite → the member check on the corp's token; with snsapi_privateinfo,
 * service/auth/getuserdetail3rd. A 代开发 suite's pages are its app in the one corp, as a
 * self-built app's (the web login, on the corp's 代开发 token): `app` finds it.
 */
export function createSuiteWebLogin ({ authorizations, client, memberCheck, timeout }: SuiteWebDependencies) {
  return {
    /** The suite's kind, or 400 WECOM_SUITE_UNKNOWN. */
    kind (suiteId: string): 'third-party' | 'custom' {
      const suite = authorizations.suite(suiteId)
      if (suite === undefined) throw new SuiteUnknownError(suiteId)
      return suite.kind
    },

    /**
     * A 代开发 suite's app in the corp, as a web app (its first AgentID in the corp, on the corp's
     * 代开发 token); 403 WECOM_CORP_NOT_ALLOWED when the corp has not installed it, or has no app of it.
     */
    async app (suiteId: string, corpId: string, context: LoginContext): Promise<WebAppCredentials> {
      return appOf(await requireInstall(authorizations, suiteId, corpId, context))
    },

    /** A 代开发 suite's page's code → the member, by `login` on the corp's app (the web login), the install confirmed after. */
    async custom (suiteId: string, corpId: string, context: LoginContext, login: (app: WebAppCredentials) => Promise<VerifiedLogin>): Promise<VerifiedLogin> {
      const installed = await requireInstall(authorizations, suiteId, corpId, context)
      const verified = await login(appOf(installed))
      await confirmInstall(authorizations, installed, context)
      return Object.assign({}, verified, { suiteId })
    },

    /** A third-party suite's page's code → the member, as the mini program's login verifies one; no session_key. */
    login (suiteId: string, code: string, context: LoginContext): Promise<VerifiedLogin> {
      return decide(timeout, 'login', context.log, async (deadline) => {
        const suite = authorizations.suiteCredentials(suiteId)
        const scope = { deadline, corpId: suiteId, client: context.request?.ip }
        // The code is single-use: not spent when the member check could not follow in time.
        client.precheck([getUserInfo3rd, userGet], forApp(scope, tokenKey(suite)))
        const identity = await client.callSuite(getUserInfo3rd, suite, { query: { code } }, scope)
        if (identity.kind === 'outsider') {
          context.log.info({ suiteId }, 'wecom: web login by someone who is not a member of a corp')
          throw new UserForbiddenError()
        }
        const installed = await requireInstall(authorizations, suiteId, identity.corpid, context)
        const checked = await memberCheck(installed.credentials, identity.userid, deadline, context)
        await confirmInstall(authorizations, installed, context)
        const member = withOpenUserid(checked, identity.open_userid)
        // A user_ticket comes with snsapi_privateinfo only, for a member who granted it.
        if (identity.user_ticket === undefined) return { member, answeredAt: Date.now(), suiteId }
        const profile = await client.callSuite(getUserDetail3rd, suite, { body: { user_ticket: identity.user_ticket } }, scope)
        return { member, answeredAt: Date.now(), profile, suiteId }
      })
    }
  }
}

export type SuiteWebLogin = ReturnType<typeof createSuiteWebLogin>

/** A 代开发 install's app as a web app: its first AgentID in the corp, on the corp's 代开发 token; 403 without one. */
function appOf (installed: InstalledCorp): WebAppCredentials {
  const [agentId] = installed.corp.agentIds
  if (agentId === undefined) throw new CorpNotAllowedError()
  return Object.assign({}, installed.credentials, { agentId })
}
