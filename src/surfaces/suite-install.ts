import { CorpNotAllowedError } from '../errors.js'
import type { LoginContext } from '../member.js'
import type { WecomMember } from '../options.js'
import type { Authorizations, InstalledCorp } from '../suites/authorizations.js'

/**
 * The corp's install of the suite (of the first suite it installed, when none is named), or 403
 * WECOM_CORP_NOT_ALLOWED, logged with the corp's id, when it has none: every suite's way in.
 */
export async function requireInstall (authorizations: Authorizations, suiteId: string | undefined, corpId: string, context: LoginContext): Promise<InstalledCorp> {
  const installed = suiteId === undefined ? await authorizations.firstInstall(corpId) : await authorizations.installed(suiteId, corpId)
  if (installed === null) {
    context.log.info({ suiteId, corpId }, 'wecom: login from a corp that has not installed the suite')
    throw new CorpNotAllowedError()
  }
  return installed
}

/**
 * 403 WECOM_CORP_NOT_ALLOWED when the install read at the login's start no longer stands: the corp
 * uninstalled (or installed again) during the member check, and the login's token would outlive it.
 */
export async function confirmInstall (authorizations: Authorizations, installed: InstalledCorp, context: LoginContext): Promise<void> {
  const { suiteId, corpId, authorizedAt } = installed.corp
  if (await authorizations.stillInstalled(suiteId, corpId, authorizedAt)) return
  context.log.info({ suiteId, corpId }, 'wecom: the corp uninstalled the suite during the login')
  throw new CorpNotAllowedError()
}

/** The member with their `open_userid` (the provider's id for them, doc path/92423), when WeCom gave one. */
export function withOpenUserid (member: WecomMember, openUserid: string | undefined): WecomMember {
  return openUserid === undefined || openUserid === '' ? member : Object.assign({}, member, { open_userid: openUserid })
}
