import { z } from 'zod'
import { optionalText, SMALL_BODY, text, userDetail, userTicket, type EndpointSpec, type WecomUserDetail } from './endpoints.js'

/**
 * The service provider's endpoints (doc path/90594 on, "服务端API > 第三方应用"): what a suite's
 * own token and each authorized corp's token come from, and the suite's mini-program login. Rows
 * as endpoints.ts's; the calls made with a suite's token are `access_token` ones: a stale
 * suite_access_token (40082, 42009) is refreshed once, as an app's token is.
 */

/**
 * POST /cgi-bin/service/get_suite_token `{ suite_id, suite_secret, suite_ticket }` (doc path/90600):
 * a suite's own access token, with the newest suite_ticket WeCom pushed.
 */
export const getSuiteToken: EndpointSpec<{ suite_access_token: string, expires_in: number }> = {
  name: 'service/get_suite_token',
  path: '/cgi-bin/service/get_suite_token',
  method: 'POST',
  credential: 'secret',
  fetches: 'suite access token',
  maxBody: SMALL_BODY,
  answer: z.object({ suite_access_token: text.max(512), expires_in: z.number().positive() })
}

/** What an install gives and get_auth_info reads again: the corp, and the suite's apps in it. */
const authorization = {
  auth_corp_info: z.object({ corpid: text.max(128), corp_name: z.string().optional().catch(undefined) }),
  auth_info: z.object({ agent: z.array(z.object({ agentid: z.number() })).optional().catch(undefined) }).optional().catch(undefined)
}

/** The corp and the suite's apps in it, as get_permanent_code and get_auth_info answer them. */
export type AuthorizationAnswer = z.output<z.ZodObject<typeof authorization>>

/**
 * POST /cgi-bin/service/get_permanent_code?suite_access_token `{ auth_code }` (doc path/90603):
 * the corp's permanent code, for the single-use AuthCode of a create_auth push.
 */
export const getPermanentCode: EndpointSpec<AuthorizationAnswer & { permanent_code: string }> = {
  name: 'service/get_permanent_code',
  path: '/cgi-bin/service/get_permanent_code',
  method: 'POST',
  credential: 'access_token',
  maxBody: SMALL_BODY,
  answer: z.object({ permanent_code: text.max(512), ...authorization })
}

/** POST /cgi-bin/service/get_auth_info?suite_access_token `{ auth_corpid, permanent_code }` (doc path/90604). */
export const getAuthInfo: EndpointSpec<AuthorizationAnswer> = {
  name: 'service/get_auth_info',
  path: '/cgi-bin/service/get_auth_info',
  method: 'POST',
  credential: 'access_token',
  maxBody: SMALL_BODY,
  answer: z.object(authorization)
}

/**
 * POST /cgi-bin/service/get_corp_token?suite_access_token `{ auth_corpid, permanent_code }` (doc
 * path/90605): an authorized corp's access token for a third-party suite.
 */
export const getCorpToken: EndpointSpec<{ access_token: string, expires_in: number }> = {
  name: 'service/get_corp_token',
  path: '/cgi-bin/service/get_corp_token',
  method: 'POST',
  credential: 'access_token',
  maxBody: SMALL_BODY,
  answer: z.object({ access_token: text.max(512), expires_in: z.number().positive() })
}

/**
 * GET /cgi-bin/service/miniprogram/jscode2session?suite_access_token&js_code&grant_type (doc
 * path/92423): a third-party mini program's login. `userid` is encrypted when the member's corp has
 * not installed the suite; `open_userid` is the member's id for this provider.
 */
export const serviceJscode2session: EndpointSpec<{ corpid: string, userid: string, session_key: string, open_userid?: string }> = {
  name: 'service/miniprogram/jscode2session',
  path: '/cgi-bin/service/miniprogram/jscode2session',
  method: 'GET',
  credential: 'access_token',
  clientInput: true,
  maxBody: SMALL_BODY,
  answer: z.object({ corpid: text, userid: text, session_key: z.string(), open_userid: z.string().optional().catch(undefined) })
}

/** Who opened a third-party suite's page: a member of an installed corp (or of one that has not, its userid encrypted), or someone who is not a member. */
export type SuiteWebIdentity =
  | { kind: 'member', corpid: string, userid: string, open_userid?: string, user_ticket?: string }
  | { kind: 'outsider', openid: string }

/**
 * GET /cgi-bin/service/auth/getuserinfo3rd?suite_access_token&code (doc path/91121): the code of
 * a third-party suite's page (OAuth inside WeCom, or the PC login with login_type=ServiceApp) →
 * the member's corpid, userid, open_userid, and with snsapi_privateinfo a user_ticket; an openid
 * for someone who is not a member.
 */
export const getUserInfo3rd: EndpointSpec<SuiteWebIdentity> = {
  name: 'service/auth/getuserinfo3rd',
  path: '/cgi-bin/service/auth/getuserinfo3rd',
  method: 'GET',
  credential: 'access_token',
  clientInput: true,
  maxBody: SMALL_BODY,
  // As auth/getuserinfo's: a member first, and a ticket past WeCom's 512 bytes is not WeCom's.
  answer: z.union([
    z.object({ corpid: text, userid: text, open_userid: optionalText, user_ticket: userTicket })
      .transform((member) => ({ kind: 'member' as const, ...member })),
    z.object({ openid: text }).transform((outsider) => ({ kind: 'outsider' as const, ...outsider }))
  ])
}

/** POST /cgi-bin/service/auth/getuserdetail3rd?suite_access_token `{ user_ticket }` (doc path/91122): the member's private fields. */
export const getUserDetail3rd: EndpointSpec<WecomUserDetail> = {
  name: 'service/auth/getuserdetail3rd',
  path: '/cgi-bin/service/auth/getuserdetail3rd',
  method: 'POST',
  credential: 'access_token',
  memberCheck: true,
  maxBody: SMALL_BODY,
  answer: z.object(userDetail)
}
