/**
 * The service provider's endpoints as the simulator answers them (issue 19): a suite's access
 * token (doc path/90600, "获取第三方应用凭证"), with the suite's id and secret and a suite_ticket
 * pushed within the last 30 minutes; an install's permanent code, auth info and corp token; the
 * suite's mini-program login.
 */
import type { EndpointContext } from './context.js'
import { corpTokenKey, type SuiteInstall } from './suite-installs.js'
import { detailReply, visitorReply } from './web-endpoints.js'
import { jsonObject, type Reply } from './wire.js'

/** 40083: no such suite_id; 40001: a wrong suite_secret; 40085: no such suite_ticket, or one past its 30 minutes. */
export function getSuiteToken ({ suites, suiteTokens }: EndpointContext, _query: Record<string, string>, raw: string): Reply {
  const body = jsonObject(raw)
  if (body === undefined) return { errcode: 47001 }
  const { suite_id: suiteId, suite_secret: secret, suite_ticket: ticket } = body
  if (typeof suiteId !== 'string') return { errcode: 40083 }
  const suite = suites.suite(suiteId)
  if (suite === undefined) return { errcode: 40083 }
  if (secret !== suite.secret) return { errcode: 40001 }
  if (typeof ticket !== 'string' || !suites.ticketValid(suiteId, ticket)) return { errcode: 40085 }
  const { token, expiresIn } = suiteTokens.issue(suiteId)
  return { errcode: 0, suite_access_token: token, expires_in: expiresIn }
}

/** A POST body's `auth_corpid` and `permanent_code`, checked as WeCom does: 40084 for a code of no install. */
function installOf ({ installs }: EndpointContext, suiteId: string, body: Record<string, unknown> | undefined): SuiteInstall | number {
  if (body === undefined) return 47001
  const { auth_corpid: corpId, permanent_code: code } = body
  if (typeof corpId !== 'string' || typeof code !== 'string') return 40084
  const install = installs.of(suiteId, corpId)
  return install?.permanentCode === code ? install : 40084
}

/** What an install says of the corp and the suite's app in it (doc path/90603). */
function described (install: SuiteInstall): Record<string, unknown> {
  return {
    auth_corp_info: { corpid: install.corpId, corp_name: `corp ${install.corpId}` },
    auth_info: { agent: [{ agentid: install.agentId, name: 'suite app' }] }
  }
}

/** service/get_permanent_code: 40082 for a suite token of no suite; 40078 for an AuthCode unknown, spent or expired. */
export function getPermanentCode (context: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  const code = jsonObject(raw)?.auth_code
  const install = typeof code === 'string' ? context.installs.redeem(suiteId, code) : undefined
  if (install === undefined) return { errcode: 40078 }
  return { ...described(install), errcode: 0, permanent_code: install.permanentCode }
}

/** service/get_auth_info: the install read again. */
export function getAuthInfo (context: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  const install = installOf(context, suiteId, jsonObject(raw))
  return typeof install === 'number' ? { errcode: install } : { ...described(install), errcode: 0 }
}

/** service/get_corp_token: the corp's token for the suite's app, as gettoken issues one. */
export function getCorpToken (context: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  const install = installOf(context, suiteId, jsonObject(raw))
  if (typeof install === 'number') return { errcode: install }
  const { token, expiresIn } = context.credentials.token(install.corpId, corpTokenKey(install), install.agentId)
  return { errcode: 0, access_token: token, expires_in: expiresIn }
}

/**
 * service/miniprogram/jscode2session (doc path/92423): the code's corp and member, the member's
 * open_userid; the userid encrypted when the corp has not installed the suite.
 */
export function serviceJscode2session (context: EndpointContext, query: Record<string, string>): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  if (!query.js_code) return { errcode: 41008 }
  if (query.grant_type !== 'authorization_code') return { errcode: 40002 }
  const state = context.credentials.redeem(query.js_code)
  if (typeof state === 'number') return { errcode: state }
  const installed = context.installs.of(suiteId, state.corpId) !== undefined
  return {
    errcode: 0,
    corpid: state.corpId,
    userid: installed ? state.userid : context.installs.encryptedUserid(suiteId, state.userid),
    session_key: state.sessionKey,
    open_userid: context.installs.openUserid(state.corpId, state.userid)
  }
}

/**
 * service/auth/getuserinfo3rd (doc path/91121): who opened a third-party suite's page, from a code
 * of that suite's page: a member's corpid, userid (encrypted when the corp has not installed the
 * suite) and open_userid, with a user_ticket for snsapi_privateinfo; an outsider's openid.
 */
export function getUserInfo3rd (context: EndpointContext, query: Record<string, string>): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  if (!query.code) return { errcode: 41008 }
  const code = context.web.redeem(query.code)
  if (code === undefined || code.suiteId !== suiteId) return { errcode: 40029 }
  if (!('userid' in code.visitor)) return visitorReply(context, code, {})
  const { userid } = code.visitor
  const installed = context.installs.of(suiteId, code.corpId) !== undefined
  return visitorReply(context, code, {
    corpid: code.corpId,
    userid: installed ? userid : context.installs.encryptedUserid(suiteId, userid),
    open_userid: context.installs.openUserid(code.corpId, userid)
  })
}

/** service/auth/getuserdetail3rd: the member's private fields, for a user_ticket of the suite's page. */
export function getUserDetail3rd (context: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const suiteId = context.suiteTokens.check(query.suite_access_token)
  if (typeof suiteId === 'number') return { errcode: suiteId }
  return detailReply(context, raw, (ticket) => ticket.suiteId === suiteId, true)
}
