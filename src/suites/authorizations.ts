import type { FastifyBaseLogger } from 'fastify'
import type { CorpHook } from '../options.js'
import type { Vault } from '../sessions/vault.js'
import type { CorpAuthorization, CorpAuthorizationStore, MemberRevocation } from '../stores/store.js'
import { WHOLE_CORP } from '../stores/store.js'
import type { WecomClient } from '../wecom/client.js'
import type { CorpCredentials } from '../wecom/credentials.js'
import { UnavailableError } from '../errors.js'
import { decide } from '../wecom/outcome.js'
import { getAuthInfo, getPermanentCode, type AuthorizationAnswer } from '../wecom/service-endpoints.js'
import type { AuthorizedCorp, SuiteOptions } from './options.js'

export interface AuthorizationsDependencies {
  suites: readonly SuiteOptions[]
  /** Where installs are kept (the store's, its outages answered as 503 WECOM_STORE_UNAVAILABLE). */
  store: CorpAuthorizationStore
  /** Seals permanent codes with `sealKeys`. */
  vault: Vault
  client: WecomClient
  /** Milliseconds the WeCom work of one push may take (`api.timeout`). */
  timeout: number
  /** Ends every access token of the corp issued until the revocation's not-before, on every instance. */
  revokeCorp (revocation: MemberRevocation): Promise<void>
  /** Seconds an access token lives (`jwt.expiresIn`): how long a corp's revocation must be kept. */
  accessTtl: number
  hooks: { onCorpAuthorized?: CorpHook | undefined, onCorpCancelled?: CorpHook | undefined }
  log: FastifyBaseLogger
  now?: () => number
}

/** An authorized corp and the credentials its token is fetched with: opened for one use, never kept. */
export interface InstalledCorp { corp: AuthorizedCorp, credentials: CorpCredentials }

/**
 * The corps that installed the suites (doc path/90603 on): an install's permanent code fetched
 * and sealed, read again on change_auth, replaced on reset_permanent_code, erased on cancel_auth
 * with every session of the corp; and each corp's credentials, opened only to fetch its token.
 * Every failure rejects, so that the push goes unacknowledged and WeCom resends it; but for
 * onCorpAuthorized's, once the single-use AuthCode is spent.
 */
export function createAuthorizations (deps: AuthorizationsDependencies) {
  const { store, vault, client, timeout, log, hooks, now = Date.now } = deps
  const suites = new Map(deps.suites.map((suite) => [suite.suiteId, suite]))
  const suiteCredentials = new Map(deps.suites.map((suite) => [suite.suiteId, { corpId: suite.suiteId, secret: suite.secret }]))
  const suiteOf = (suiteId: string): CorpCredentials => {
    const suite = suiteCredentials.get(suiteId)
    if (suite === undefined) throw new Error(`no suite ${suiteId} in the options`)
    return suite
  }

  /** The corp's credentials from its authorization: the code opened, the suite's way to its token. */
  const credentialsOf = (authorization: CorpAuthorization): CorpCredentials | null => {
    const code = vault.open(authorization.sealedCode)
    if (code === null) return null
    // 代开发: gettoken with the permanent code as the secret (doc path/97164); third-party: get_corp_token.
    return suites.get(authorization.suiteId)?.kind === 'custom'
      ? { corpId: authorization.corpId, secret: code }
      : { corpId: authorization.corpId, secret: code, suite: suiteOf(authorization.suiteId) }
  }

  /**
   * get_permanent_code for `authCode`, sealed and kept in place of the corp's former install, which
   * is answered too. A new install's push is dated `pushedAt` (WeCom's epoch seconds); without it,
   * a new code of the same install, whose sessions live on.
   */
  const exchange = async (suiteId: string, authCode: string, pushedAt: number | undefined): Promise<{ authorization: CorpAuthorization, former: CorpAuthorization | null }> => {
    const carryOver = pushedAt === undefined
    const answer = await decide(timeout, 'api', log, (deadline) =>
      client.callSuite(getPermanentCode, suiteOf(suiteId), { body: { auth_code: authCode } }, { deadline, corpId: suiteId }))
    const described = describe(suiteId, answer)
    const former = await store.get(suiteId, described.corpId)
    const authorizedAt = carryOver && former !== null ? former.authorizedAt : now()
    const installPushedAt = carryOver ? former?.installPushedAt : pushedAt
    const authorization: CorpAuthorization = { ...described, sealedCode: vault.seal(answer.permanent_code), authorizedAt }
    if (installPushedAt !== undefined) authorization.installPushedAt = installPushedAt
    await store.save(authorization)
    // The former code's token must serve no call again: WeCom may end it with the code.
    const old = former === null ? null : credentialsOf(former)
    if (old !== null) await client.forgetToken(old)
    return { authorization, former }
  }

  /**
   * The install's credentials.
   * @throws UnavailableError (503, logged) when none of sealKeys opens its code: a key removed too soon, not an uninstall
   */
  const opened = (kept: CorpAuthorization): CorpCredentials => {
    const credentials = credentialsOf(kept)
    if (credentials !== null) return credentials
    log.error({ suiteId: kept.suiteId, corpId: kept.corpId }, 'wecom: none of sealKeys opens the corp\'s permanent code: put back the key that sealed it')
    throw new UnavailableError()
  }

  return {
    /** create_auth: the corp installed the suite. A former install's sessions do not carry over. */
    async install (suiteId: string, authCode: string, pushedAt: number): Promise<AuthorizedCorp> {
      const corp = publicOf((await exchange(suiteId, authCode, pushedAt)).authorization)
      log.info({ suiteId, corpId: corp.corpId, agentIds: corp.agentIds }, 'wecom: corp installed the suite')
      try {
        await hooks.onCorpAuthorized?.(corp)
      } catch (error) {
        // The AuthCode is spent: a resend could not install again, so the install stands, acknowledged.
        log.error({ err: error, suiteId, corpId: corp.corpId }, 'wecom: onCorpAuthorized failed; the install is kept (app.wecom.corps() lists it)')
      }
      return corp
    },

    /** reset_permanent_code (代开发): a new code for the corp; its sessions live on. */
    async reset (suiteId: string, authCode: string): Promise<void> {
      const { authorization } = await exchange(suiteId, authCode, undefined)
      log.info({ suiteId, corpId: authorization.corpId }, 'wecom: the corp\'s permanent code was reset; the new one is kept')
    },

    /** change_auth: the corp's apps or scope changed; its auth info read again. */
    async reread (suiteId: string, corpId: string): Promise<void> {
      const kept = await store.get(suiteId, corpId)
      if (kept === null) {
        log.warn({ suiteId, corpId }, 'wecom: change_auth for a corp with no install kept; ignored')
        return
      }
      // A code this instance cannot open answers 503, as a login does: WeCom sends the push again.
      const credentials = opened(kept)
      const answer = await decide(timeout, 'api', log, (deadline) =>
        client.callSuite(getAuthInfo, suiteOf(suiteId), { body: { auth_corpid: corpId, permanent_code: credentials.secret } }, { deadline, corpId }))
      await store.save({ ...kept, ...describe(suiteId, answer), corpId: kept.corpId })
      log.info({ suiteId, corpId }, 'wecom: the corp\'s authorization changed; read again')
    },

    /**
     * cancel_auth, pushed at `pushedAt` (WeCom's epoch seconds): every access token of the corp refused on every
     * instance, its token and install erased, then the host told: in that order, so that a resend
     * after a failure does all that is left, and a host's failing hook keeps no corp installed. A
     * cancel older than the corp's install (a late resend, after the corp installed again) is no
     * cancel of it: ignored.
     */
    async cancel (suiteId: string, corpId: string, pushedAt: number): Promise<void> {
      const at = now()
      const kept = await store.get(suiteId, corpId)
      if (kept?.installPushedAt !== undefined && kept.installPushedAt > pushedAt) {
        log.warn({ suiteId, corpId }, 'wecom: a cancel_auth older than the corp\'s install; ignored')
        return
      }
      await deps.revokeCorp({ corpid: corpId, userid: WHOLE_CORP, notBefore: at, until: at + deps.accessTtl * 1000 })
      log.info({ suiteId, corpId }, 'wecom: corp uninstalled the suite; its sessions ended')
      if (kept === null) return
      const credentials = credentialsOf(kept)
      if (credentials !== null) await client.forgetToken(credentials)
      await store.remove(suiteId, corpId)
      try {
        await hooks.onCorpCancelled?.(publicOf(kept))
      } catch (error) {
        // The corp is gone whatever the host's tables say: acknowledged, as onCorpAuthorized's failure is.
        log.error({ err: error, suiteId, corpId }, 'wecom: onCorpCancelled failed; the corp is uninstalled (app.wecom.corps() no longer lists it)')
      }
    },

    /** Whether the corp's install read at a login (its `authorizedAt`) still stands: a cancel during the login's member check refuses it. */
    async stillInstalled (suiteId: string, corpId: string, authorizedAt: number): Promise<boolean> {
      return (await store.get(suiteId, corpId))?.authorizedAt === authorizedAt
    },

    /**
     * The corp's install of the suite and its credentials; null when it has none.
     * @throws UnavailableError (503, logged) when none of sealKeys opens its code: a key removed too soon, not an uninstall
     */
    async installed (suiteId: string, corpId: string): Promise<InstalledCorp | null> {
      const kept = await store.get(suiteId, corpId)
      return kept === null ? null : { corp: publicOf(kept), credentials: opened(kept) }
    },

    /** The corp's install of the first of the suites it installed (in the order of `suites`); null when none. */
    async firstInstall (corpId: string): Promise<InstalledCorp | null> {
      for (const { suiteId } of deps.suites) {
        const installed = await this.installed(suiteId, corpId)
        if (installed !== null) return installed
      }
      return null
    },

    /** Every corp that installed one of the suites, suite by suite. */
    async list (): Promise<AuthorizedCorp[]> {
      return (await Promise.all(deps.suites.map(({ suiteId }) => store.list(suiteId)))).flat().map(publicOf)
    },

    suite: (suiteId: string): SuiteOptions | undefined => suites.get(suiteId),
    suiteCredentials: suiteOf
  }
}

export type Authorizations = ReturnType<typeof createAuthorizations>

/** What WeCom said of the corp: its id exactly as written, its name, the suite's apps in it. */
function describe (suiteId: string, answer: AuthorizationAnswer): Omit<CorpAuthorization, 'sealedCode' | 'authorizedAt'> {
  return {
    suiteId,
    corpId: answer.auth_corp_info.corpid,
    corpName: answer.auth_corp_info.corp_name ?? '',
    agentIds: answer.auth_info?.agent?.map(({ agentid }) => agentid) ?? []
  }
}

function publicOf ({ suiteId, corpId, corpName, agentIds, authorizedAt }: CorpAuthorization): AuthorizedCorp {
  return { suiteId, corpId, corpName, agentIds: [...agentIds], authorizedAt }
}
