import { UserForbiddenError } from '../errors.js'
import type { AuthorizeFn, WecomMember } from '../options.js'
import type { WecomClient } from '../wecom/client.js'
import type { CorpCredentials } from '../wecom/credentials.js'
import type { Deadline } from '../wecom/deadline.js'
import { userGet } from '../wecom/endpoints.js'
import { WecomTransportError } from '../wecom/failures.js'
import type { LoginContext } from '../member.js'

export interface MemberCheckDependencies {
  client: WecomClient
  authorize?: AuthorizeFn
}

/** The member check of every way in: may this member use the app now? */
export type MemberCheck = (corp: CorpCredentials, userid: string, deadline: Deadline, context: LoginContext) => Promise<WecomMember>

/**
 * user/get (doc path/90196): inside the app's visible range, else a `forbidden` errcode; then the
 * member's status (1 active; 2 disabled, 4 not activated, 5 left) and the host's `authorize`.
 * Throws UserForbiddenError for a member who may not use the app, or what the call path throws.
 */
export function createMemberCheck ({ client, authorize }: MemberCheckDependencies): MemberCheck {
  return async (corp, userid, deadline, context) => {
    const info = await client.callApp(userGet, corp, { query: { userid } }, { deadline, corpId: corp.corpId })
    if (info.userid !== userid) throw new WecomTransportError(userGet.name, 'malformed', 'userid not the one asked for')
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
}
