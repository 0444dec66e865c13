import { CorpNotAllowedError } from '../errors.js'
import type { LoginContext } from '../member.js'
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
