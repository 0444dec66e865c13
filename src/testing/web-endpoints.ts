/**
 * The endpoints a web app's server calls, each with the app's own token: after WeCom's page
 * redirected back with a code, auth/getuserinfo (who opened the page) and auth/getuserdetail (a
 * member's private fields, with the user_ticket of snsapi_privateinfo), doc 91023 and 95833; for
 * the page's JS-SDK, get_jsapi_ticket and ticket/get (doc 90506).
 */
import type { TokenState } from './credentials.js'
import type { EndpointContext } from './context.js'
import { jsonObject, type Reply } from './wire.js'

/** Fields getuserdetail answers: WeCom sends each, empty when the member has none. */
const DETAIL_FIELDS = ['avatar', 'qr_code', 'mobile', 'email', 'biz_mail', 'address'] as const

/** Whether what a page issued (a code, a user_ticket) may be used with this token: same corp, and the page's app if it named one. */
function issuedTo (token: TokenState, issued: { corpId: string, agentId: number | undefined }): boolean {
  return issued.corpId === token.corpId && (issued.agentId === undefined || issued.agentId === token.agentId)
}

export function getUserInfo ({ directory, credentials, web }: EndpointContext, query: Record<string, string>): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  if (!query.code) return { errcode: 41008 }
  const code = web.redeem(query.code)
  // A code of another corp or another app is spent and refused alike: the caller learns nothing of it.
  if (code === undefined || !issuedTo(token, code)) return { errcode: 40029 }
  const { visitor } = code
  if ('openid' in visitor) {
    const outsider = directory.find(code.corpId)?.outsiders.get(visitor.openid)
    const reply: Reply = { errcode: 0, openid: visitor.openid }
    if (outsider?.externalUserid !== undefined) reply.external_userid = outsider.externalUserid
    return reply
  }
  const reply: Reply = { errcode: 0, userid: visitor.userid }
  const member = directory.find(code.corpId)?.members.get(visitor.userid)
  // WeCom hands a user_ticket only to members inside the app's visible range.
  if (code.scope === 'snsapi_privateinfo' && member !== undefined && member.visible !== false) {
    reply.user_ticket = web.issueUserTicket({ corpId: code.corpId, agentId: code.agentId, userid: visitor.userid })
  }
  return reply
}

export function getUserDetail ({ directory, credentials, web }: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  const body = jsonObject(raw)
  if (body === undefined) return { errcode: 47001 }
  const ticket = typeof body.user_ticket === 'string' ? web.userTicket(body.user_ticket) : undefined
  // WeCom's documentation names no errcode for a bad user_ticket: 40058 (invalid parameter) is a guess.
  if (ticket === undefined || !issuedTo(token, ticket)) return { errcode: 40058 }
  const member = directory.find(ticket.corpId)?.members.get(ticket.userid)
  if (member === undefined) return { errcode: 60111 }
  const reply: Reply = { errcode: 0, userid: member.userid, gender: member.gender ?? '0' }
  for (const field of DETAIL_FIELDS) reply[field] = member[field] ?? ''
  return reply
}

export function getJsapiTicket ({ credentials, tickets }: EndpointContext, query: Record<string, string>): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  return tickets.corpTicket(token.corpId, token.agentId)
}

export function getTicket ({ credentials, tickets }: EndpointContext, query: Record<string, string>): Reply {
  const token = credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  if (query.type !== 'agent_config') return { errcode: 40058 }
  return tickets.appTicket(token.corpId, token.agentId)
}
