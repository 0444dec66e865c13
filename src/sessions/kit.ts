import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { isWecomError, StoreUnavailableError } from '../errors.js'
import type { AccessTokens } from '../jwt.js'
import type { ExtendClaimsFn, WecomHooks, WecomMember } from '../options.js'
import { StoreDownError, type RevokedSession, type SessionRecord, type SessionStore } from '../stores/store.js'
import type { LoginFlow } from '../member.js'
import type { RefreshTokens } from './refresh-tokens.js'
import type { Vault } from './vault.js'

// What the session operations (start, rotation, revocation) share: their dependencies, and the
// few steps each of them takes the same way, so that an answer, a hook or a revocation reads alike
// wherever it comes from.

/** The body of a successful login or refresh. */
export interface IssuedTokens {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  /** Absent only when the session store was down at login: the member logs in again later. */
  refresh_token?: string
  refresh_expires_in?: number
  user: WecomMember
}

/** Where an operation comes from: the request when there is one, for the hooks and their log lines. */
export interface OperationContext {
  request?: FastifyRequest
}

export interface SessionDependencies {
  store: SessionStore
  tokens: AccessTokens
  refreshTokens: RefreshTokens
  vault: Vault
  loginFlow: LoginFlow
  /** Seconds. */
  accessTtl: number
  refreshTtl: number
  recheckInterval: number
  /** Seconds during which the token a rotation replaced gets that rotation's answer again; 0: never. */
  reuseGrace: number
  miniprogramAppId?: string
  hooks?: WecomHooks
  extendClaims?: ExtendClaimsFn
  /** Where a hook's failure is logged when no request is there to log it. */
  log: FastifyBaseLogger
  now?: () => number
}

export interface SessionKit {
  deps: SessionDependencies
  /** Epoch ms. */
  now: () => number
  /** The body for `session`, with `refreshToken` when there is one. */
  answer (session: SessionRecord, accessToken: string, refreshToken: string | undefined): IssuedTokens
  /** A new access token for `session`, with the host's claims, answered with `refreshToken`. */
  issue (session: SessionRecord, refreshToken: string | undefined, request: FastifyRequest | undefined): Promise<IssuedTokens>
  revoke (sessions: readonly RevokedSession[]): Promise<void>
  /**
   * Runs a host's hook. Its failure is logged and the operation goes on, unless it threw one of
   * the errors table's, which the host means as an answer: that one is thrown on.
   */
  hook<A extends unknown[]> (name: keyof WecomHooks, args: A, request: FastifyRequest | undefined): Promise<void>
  /** Ends a session the plugin itself found compromised or forbidden, telling onRevoke. */
  end (session: SessionRecord, request: FastifyRequest | undefined): Promise<void>
}

export function createKit (deps: SessionDependencies): SessionKit {
  const now = deps.now ?? Date.now

  function answer (session: SessionRecord, accessToken: string, refreshToken: string | undefined): IssuedTokens {
    const issued: IssuedTokens = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: deps.accessTtl,
      user: session.member
    }
    if (refreshToken !== undefined) {
      issued.refresh_token = refreshToken
      issued.refresh_expires_in = deps.refreshTtl
    }
    return issued
  }

  // Access tokens already out stay verifiable until they expire: the revocation must outlive them.
  // Given what the caller holds of each session, the store need not read it again.
  const revoke = (sessions: readonly RevokedSession[]) => stored(() => deps.store.revoke(sessions, now() + deps.accessTtl * 1000))

  async function hook<A extends unknown[]> (name: keyof WecomHooks, args: A, request: FastifyRequest | undefined): Promise<void> {
    const fn = deps.hooks?.[name] as ((...args: A) => unknown) | undefined
    if (fn === undefined) return
    try {
      await fn(...args)
    } catch (error) {
      if (isWecomError(error)) throw error
      ;(request?.log ?? deps.log).error({ err: error, hook: name }, `wecom: hooks.${name} failed; the operation went on`)
    }
  }

  return {
    deps,
    now,
    answer,
    async issue (session, refreshToken, request) {
      const extra = deps.extendClaims === undefined ? undefined : await deps.extendClaims(session.member, request)
      const claims = { userid: session.userid, corpid: session.corpid, sid: session.sid, surface: session.surface ?? 'miniprogram', suite: session.suiteId }
      return answer(session, deps.tokens.sign(claims, extra), refreshToken)
    },
    revoke,
    hook,
    async end (session, request) {
      await revoke([session])
      await hook('onRevoke', [session.member, session.sid, request], request)
    }
  }
}

/** A store operation, its backend's failure answered as 503 WECOM_STORE_UNAVAILABLE. */
export async function stored<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw error instanceof StoreDownError ? new StoreUnavailableError() : error
  }
}
