/**
 * WeCom's endpoints as the simulator answers them, one row each: its path, its method, and the
 * answer to a call that reached it (no fault, method checked). A new endpoint is an Answer
 * (context.ts), in a file of its own, and a row in ENDPOINTS.
 */
import { randomBytes } from 'node:crypto'
import type { Endpoint, EndpointContext } from './context.js'
import { getAuthInfo, getCorpToken, getPermanentCode, getSuiteToken, getUserDetail3rd, getUserInfo3rd, serviceJscode2session } from './suite-endpoints.js'
import { getJsapiTicket, getTicket, getUserDetail, getUserInfo } from './web-endpoints.js'
import { jsonObject, type Reply } from './wire.js'

function gettoken ({ directory, credentials, installs, suites }: EndpointContext, query: Record<string, string>): Reply {
  const { corpid, corpsecret } = query
  if (!corpid) return { errcode: 41002 }
  if (!corpsecret) return { errcode: 41004 }
  const corp = directory.find(corpid)
  if (!corp) return { errcode: 40013 }
  // A 代开发 app's secret is its permanent code (doc path/97164); a third-party one's is not a secret.
  const install = installs.byCode(corpid, corpsecret)
  const agentId = install !== undefined && suites.suite(install.suiteId)?.kind === 'custom' ? install.agentId : directory.appOf(corp, corpsecret)
  if (agentId === undefined) return { errcode: 40001 }
  const { token, expiresIn } = credentials.token(corpid, corpsecret, agentId)
  return { errcode: 0, access_token: token, expires_in: expiresIn }
}

function jscode2session ({ credentials }: EndpointContext, query: Record<string, string>): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  const code = query.js_code
  if (!code) return { errcode: 41008 }
  if (query.grant_type !== 'authorization_code') return { errcode: 40002 }
  const state = credentials.redeem(code)
  if (typeof state === 'number') return { errcode: state }
  return { errcode: 0, corpid: state.corpId, userid: state.userid, session_key: state.sessionKey }
}

function getUser ({ directory, credentials }: EndpointContext, query: Record<string, string>): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  const userid = query.userid
  if (!userid) return { errcode: 41009 }
  const member = directory.find(token.corpId)?.members.get(userid)
  if (!member) return { errcode: 60111 }
  if (member.visible === false) return { errcode: 60011 }
  const reply: Reply = { errcode: 0, userid: member.userid }
  if (member.name !== undefined) reply.name = member.name
  if (member.department !== undefined) reply.department = [...member.department]
  if (member.position !== undefined) reply.position = member.position
  reply.status = member.status ?? 1
  return reply
}

function sendMessage ({ directory, credentials, messages }: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  const message = jsonObject(raw)
  if (message === undefined) return { errcode: 47001 }
  if (typeof message.msgtype !== 'string') return { errcode: 40008 }
  const members = directory.find(token.corpId)?.members
  const invalid = typeof message.touser === 'string' && message.touser !== '@all'
    ? message.touser.split('|').filter((userid) => !members?.has(userid))
    : []
  messages.push({ corpId: token.corpId, body: message })
  return { errcode: 0, invaliduser: invalid.join('|'), msgid: randomBytes(16).toString('base64url') }
}

export const ENDPOINTS = {
  gettoken: { path: '/cgi-bin/gettoken', method: 'GET', login: true, answer: gettoken },
  jscode2session: { path: '/cgi-bin/miniprogram/jscode2session', method: 'GET', login: true, answer: jscode2session },
  'user/get': { path: '/cgi-bin/user/get', method: 'GET', login: true, answer: getUser },
  'message/send': { path: '/cgi-bin/message/send', method: 'POST', answer: sendMessage },
  'auth/getuserinfo': { path: '/cgi-bin/auth/getuserinfo', method: 'GET', answer: getUserInfo },
  'auth/getuserdetail': { path: '/cgi-bin/auth/getuserdetail', method: 'POST', answer: getUserDetail },
  get_jsapi_ticket: { path: '/cgi-bin/get_jsapi_ticket', method: 'GET', answer: getJsapiTicket },
  'ticket/get': { path: '/cgi-bin/ticket/get', method: 'GET', answer: getTicket },
  'service/get_suite_token': { path: '/cgi-bin/service/get_suite_token', method: 'POST', answer: getSuiteToken },
  'service/get_permanent_code': { path: '/cgi-bin/service/get_permanent_code', method: 'POST', answer: getPermanentCode },
  'service/get_auth_info': { path: '/cgi-bin/service/get_auth_info', method: 'POST', answer: getAuthInfo },
  'service/get_corp_token': { path: '/cgi-bin/service/get_corp_token', method: 'POST', answer: getCorpToken },
  'service/miniprogram/jscode2session': { path: '/cgi-bin/service/miniprogram/jscode2session', method: 'GET', answer: serviceJscode2session },
  'service/auth/getuserinfo3rd': { path: '/cgi-bin/service/auth/getuserinfo3rd', method: 'GET', answer: getUserInfo3rd },
  'service/auth/getuserdetail3rd': { path: '/cgi-bin/service/auth/getuserdetail3rd', method: 'POST', answer: getUserDetail3rd },
} as const satisfies Record<string, Endpoint>

export type WecomEndpoint = keyof typeof ENDPOINTS
