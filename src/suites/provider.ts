import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WecomEvent } from '../events/callback.js'
import type { DeliveryClaims } from '../events/deliveries.js'
import type { ResolvedConfig } from '../options.js'
import { stored } from '../sessions/kit.js'
import { createVaultFor } from '../sessions/vault.js'
import { createSuiteCallback, type SuiteCallback } from '../events/suite-callback.js'
import type { CorpAuthorizationStore, SessionStore, SuiteTicketStore } from '../stores/store.js'
import type { MemberCheck } from '../surfaces/member-check.js'
import { createSuiteLogin, type SuiteLogin } from '../surfaces/suite-miniprogram.js'
import { createSuiteWebLogin, type SuiteWebLogin } from '../surfaces/suite-web.js'
import type { WecomClient } from '../wecom/client.js'
import type { CorpCredentials } from '../wecom/credentials.js'
import { createAuthorizations } from './authorizations.js'
import type { AuthorizedCorp } from './options.js'
import { createSuitePushes, type SuitePushes } from './pushes.js'

/** The service provider's parts, with `suites`: the installs, the suites' login, their pushes. */
export interface Provider {
  login: SuiteLogin
  /** The suites' pages' way in: a third-party suite's (getuserinfo3rd), a 代开发 suite's app in a corp. */
  web: SuiteWebLogin
  /** The suites' callback: what opens a delivery (their Tokens and keys, the provider's CorpID), what a push does. */
  callback: { receiver: SuiteCallback, pushes: SuitePushes }
  /** The SuiteIds, in the order of `suites`. */
  suiteIds: readonly string[]
  /** A corp's credentials from the first of the suites it installed; null when it installed none. */
  installedCorp (corpId: string): Promise<CorpCredentials | null>
  /** Every corp that installed one of the suites (`app.wecom.corps()`). */
  corps (): Promise<AuthorizedCorp[]>
}

export interface ProviderDependencies {
  store: SessionStore
  /** The store's suite tickets, as the client reads them (storedTickets). */
  tickets: SuiteTicketStore
  client: WecomClient
  memberCheck: MemberCheck
  /** The claims of deliveries, as the corps' callback makes them. */
  claims: Omit<DeliveryClaims, 'log'>
  /** A contact event of an authorized corp: the corps' off-boarding. */
  contactEvent (corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void>
  log: FastifyBaseLogger
}

/** The provider's parts; undefined without `suites`. */
export function createProvider (config: ResolvedConfig, deps: ProviderDependencies): Provider | undefined {
  const { suites, sealKeys, provider } = config
  if (suites === undefined || sealKeys === undefined || provider === undefined) return undefined
  const { store, client, log } = deps
  const authorizations = createAuthorizations({
    suites,
    store: storedAuthorizations(store.corpAuthorizations),
    vault: createVaultFor('permanent code', [sealKeys[0], ...sealKeys.slice(1)]),
    client,
    timeout: config.api.timeout,
    revokeCorp: async (revocation) => { await stored(() => store.revokeMember(revocation)) },
    accessTtl: config.jwt.expiresIn,
    hooks: config.hooks,
    log
  })
  const pushes = createSuitePushes({ tickets: deps.tickets, authorizations, claims: deps.claims, contactEvent: deps.contactEvent, log })
  return {
    login: createSuiteLogin({ authorizations, client, memberCheck: deps.memberCheck, timeout: config.api.timeout }),
    web: createSuiteWebLogin({ authorizations, client, memberCheck: deps.memberCheck, timeout: config.api.timeout }),
    callback: {
      receiver: createSuiteCallback(suites.map(({ suiteId, token, encodingAESKey }) => ({ suiteId, token, encodingAESKey })), provider.corpId),
      pushes
    },
    suiteIds: suites.map(({ suiteId }) => suiteId),
    installedCorp: async (corpId) => (await authorizations.firstInstall(corpId))?.credentials ?? null,
    corps: () => authorizations.list()
  }
}

/** The store's suite tickets, its backend's failures answered as 503 WECOM_STORE_UNAVAILABLE. */
export function storedTickets ({ suiteTickets }: SessionStore): SuiteTicketStore {
  return {
    save: (...args) => stored(() => suiteTickets.save(...args)),
    get: (suiteId) => stored(() => suiteTickets.get(suiteId))
  }
}

/** The installs, the store's failures answered as 503 WECOM_STORE_UNAVAILABLE. */
function storedAuthorizations (installs: CorpAuthorizationStore): CorpAuthorizationStore {
  return {
    save: (authorization) => stored(() => installs.save(authorization)),
    get: (suiteId, corpId) => stored(() => installs.get(suiteId, corpId)),
    remove: (suiteId, corpId) => stored(() => installs.remove(suiteId, corpId)),
    list: (suiteId) => stored(() => installs.list(suiteId))
  }
}
