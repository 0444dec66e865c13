import { UserForbiddenError } from '../errors.js'
import type { LoginContext, VerifiedLogin } from '../member.js'
import type { WecomMember } from '../options.js'
import { forApp } from '../wecom/admission.js'
import type { WecomClient } from '../wecom/client.js'
import { tokenKey, type CorpCredentials } from '../wecom/credentials.js'
import { authGetUserDetail, authGetUserInfo, userGet } from '../wecom/endpoints.js'
import { decide } from '../wecom/outcome.js'
import type { MemberCheck } from './member-check.js'

/** A corp's self-built app whose pages log members in: its agentid and its own credentials. */
export interface WebAppCredentials extends CorpCredentials { agentId: number }

/** `snsapi_base` (userid only, silent) or `snsapi_privateinfo` (the member confirms; a user_ticket too). */
export type OAuthScope = 'snsapi_base' | 'snsapi_privateinfo'

/**
 * Whose pages a web login opens: a corp's app (`appid` the CorpID, and its AgentID), or a
 * third-party suite (`appid` its SuiteID, no AgentID: doc path/91120).
 */
export type PageApp = { appid: string, agentId: number } | { appid: string, agentId?: undefined }

/**
 * The authorize URL a page inside WeCom opens (doc path/91022, path/91120): `appid`,
 * `redirect_uri`, `response_type`, `scope`, `state`, `agentid` (a corp's app's) in WeCom's order,
 * then `#wechat_redirect`.
 */
export function authorizeUrl (base: string, app: PageApp, redirectUri: string, scope: OAuthScope, state: string): string {
  const query = new URLSearchParams({ appid: app.appid, redirect_uri: redirectUri, response_type: 'code', scope, state })
  if (app.agentId !== undefined) query.set('agentid', String(app.agentId))
  return `${base}?${query.toString()}#wechat_redirect`
}

export interface WebLoginDependencies {
  client: WecomClient
  memberCheck: MemberCheck
  /** Milliseconds all the WeCom work of one login may take (`api.timeout`). */
  timeout: number
}

/**
 * A web login's code (from the authorize page or the PC login page alike) → the member:
 * auth/getuserinfo with the web app's own token (doc path/91023); someone who is not a member
 * (a WeChat user, an external contact) → UserForbiddenError; then the member check on the web
 * app (its visible range, status, `authorize`). The errors are the errors table's, as for the
 * mini program. Resolves with no session_key: a web login has none.
 */
export interface WebLogin {
  login (app: WebAppCredentials, code: string, context: LoginContext): Promise<VerifiedLogin>
  checkMember (app: WebAppCredentials, userid: string, context: LoginContext): Promise<WecomMember>
}

export function createWebLogin ({ client, memberCheck, timeout }: WebLoginDependencies): WebLogin {
  return {
    login: (app, code, context) =>
      decide(timeout, 'login', context.log, async (deadline) => {
        const scope = { deadline, corpId: app.corpId, client: context.request?.ip }
        // The code is single-use: not spent when the member check could not follow in time.
        client.precheck([authGetUserInfo, userGet], forApp(scope, tokenKey(app)))
        const identity = await client.callApp(authGetUserInfo, app, { query: { code } }, scope)
        if (identity.kind === 'outsider') {
          context.log.info({ corpId: app.corpId }, 'wecom: web login by someone who is not a member of the corp')
          throw new UserForbiddenError()
        }
        const member = await memberCheck(app, identity.userid, deadline, context)
        // A user_ticket comes with snsapi_privateinfo only, for a member who granted it.
        if (identity.user_ticket === undefined) return { member, answeredAt: Date.now() }
        const profile = await client.callApp(authGetUserDetail, app, { body: { user_ticket: identity.user_ticket } }, scope)
        return { member, answeredAt: Date.now(), profile }
      }),
    /** The member check again, on the web app: a web session's refresh recheck. */
    checkMember: (app, userid, context) =>
      decide(timeout, 'login', context.log, (deadline) => memberCheck(app, userid, deadline, context))
  }
}
