/**
 * The endpoints a web app's server calls, each with the app's own token: after WeCom's page
 * redirected back with a code, auth/getuserinfo (who opened the page) and auth/getuserdetail (a
 * member's private fields, with the user_ticket of snsapi_privateinfo), doc 91023 and 95833; for
 * the page's JS-SDK, get_jsapi_ticket and ticket/get (doc 90506).
 */
import type { TokenState } from './credentials.js'
import type { EndpointContext } from './context.js'
import type { UserTicket, WebCode } from './web-logins.js'
import { jsonObject, type Reply } from './wire.js'

/** Fields getuserdetail answers: WeCom sends each, empty when the member has none. */
const DETAIL_FIELDS = ['avatar', 'qr_code', 'mobile', 'email', 'biz_mail', 'address'] as const

/**
 * Whether what a page issued (a code, a user_ticket) may be used with this token: same corp, and
 * the page's app if it named one; a suite's page's, never with a corp's token.
 */
function issuedTo (token: TokenState, issued: { corpId: string, agentId: number | undefined, suiteId?: string }): boolean {
  return issued.suiteId === undefined && issued.corpId === token.corpId && (issued.agentId === undefined || issued.agentId === token.agentId)
}

/** Who opened the page, as auth/getuserinfo and service/auth/getuserinfo3rd answer it: a member, with a user_ticket when granted; an outsider's openid. */
export function visitorReply ({ directory, web }: EndpointContext, code: WebCode, member: Record<string, string>): Reply {
  const { visitor } = code
  if ('openid' in visitor) {
    const outsider = directory.find(code.corpId)?.outsiders.get(visitor.openid)
    const reply: Reply = { errcode: 0, openid: visitor.openid }
    if (outsider?.externalUserid !== undefined) reply.external_userid = outsider.externalUserid
    return reply
  }
  const reply: Reply = { errcode: 0, ...member }
  const found = directory.find(code.corpId)?.members.get(visitor.userid)
  // WeCom hands a user_ticket only to members inside the app's visible range.
  if (code.scope === 'snsapi_privateinfo' && found !== undefined && found.visible !== false) {
    reply.user_ticket = web.issueUserTicket({ corpId: code.corpId, agentId: code.agentId, userid: visitor.userid, suiteId: code.suiteId })
  }
  return reply
}

/**
 * A POST body's user_ticket → the member's private fields, as auth/getuserdetail and
 * service/auth/getuserdetail3rd answer them, for a ticket `owns` takes (its app's or suite's), the
 * corpid too with `withCorp` (the 3rd's). 47001 for a body that is no JSON; 40058 for any other
 * ticket: WeCom's documentation names no errcode for a bad user_ticket, and 40058 (invalid
 * parameter) is a guess.
 */
export function detailReply ({ directory, web }: EndpointContext, raw: string, owns: (ticket: UserTicket) => boolean, withCorp = false): Reply {
  const body = jsonObject(raw)
  if (body === undefined) return { errcode: 47001 }
  const ticket = typeof body.user_ticket === 'string' ? web.userTicket(body.user_ticket) : undefined
  if (ticket === undefined || !owns(ticket)) return { errcode: 40058 }
  const member = directory.find(ticket.corpId)?.members.get(ticket.userid)
  if (member === undefined) return { errcode: 60111 }
  const reply: Reply = { errcode: 0, userid: member.userid, gender: member.gender ?? '0' }
  for (const field of DETAIL_FIELDS) reply[field] = member[field] ?? ''
  if (withCorp) reply.corpid = ticket.corpId
  return reply
}

export function getUserInfo (context: EndpointContext, query: Record<string, string>): Reply {
  const token = context.credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  if (!query.code) return { errcode: 41008 }
  const code = context.web.redeem(query.code)
  // A code of another corp or another app is spent and refused alike: the caller learns nothing of it.
  if (code === undefined || !issuedTo(token, code)) return { errcode: 40029 }
  return visitorReply(context, code, 'userid' in code.visitor ? { userid: code.visitor.userid } : {})
}

export function getUserDetail (context: EndpointContext, query: Record<string, string>, raw: string): Reply {
  const token = context.credentials.check(query.access_token)
  if (typeof token === 'number') return { errcode: token }
  return detailReply(context, raw, (ticket) => issuedTo(token, ticket))
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
