import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { DecryptError, isWecomError, RefreshInvalidError, StoreUnavailableError, UserForbiddenError } from '../errors.js'
import type { AccessTokens } from '../jwt.js'
import type { LoginContext, LoginFlow, VerifiedLogin } from '../member.js'
import type { ExtendClaimsFn, WecomHooks, WecomMember } from '../options.js'
import { StoreDownError, type RevokedSession, type SessionRecord, type SessionStore } from '../stores/store.js'
import { hashOf, type PresentedToken, type RefreshTokens } from './refresh-tokens.js'
import { decryptUserData, encryptedUserData, type Vault } from './vault.js'

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

export interface EncryptedUserData { encryptedData: string, iv: string }

/** Where an operation comes from: the request when there is one, for the hooks and their log lines. */
export interface OperationContext {
  request?: FastifyRequest
}

export interface Sessions {
  start (login: VerifiedLogin, context: LoginContext): Promise<IssuedTokens>
  refresh (refreshToken: string, context: LoginContext): Promise<IssuedTokens>
  /** Ends the session a refresh token belongs to; a token naming no live session changes nothing. */
  endByRefreshToken (refreshToken: string, context?: OperationContext): Promise<void>
  /** Ends the session of a verified access token, as its holder asked. */
  logout (member: WecomMember, sid: string, context?: OperationContext): Promise<void>
  revokeSession (sid: string, context?: OperationContext): Promise<void>
  /**
   * Off-boarding: every session, the session_key, and every access token issued until `at`
   * (epoch ms; now when absent, and never later than now): what happened before it ends, nothing after.
   */
  revokeUser (corpId: string, userid: string, context?: OperationContext & { at?: number }): Promise<void>
  /** Any `data` that is not `{ encryptedData, iv }` in base64 is refused like data that does not decrypt. */
  decrypt (member: { corpid: string, userid: string }, data: unknown): Promise<Record<string, unknown>>
}

interface Dependencies {
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

/** What a presented refresh token is to the session it names. */
type Verdict =
  | { kind: 'current', session: SessionRecord }
  /** The token the last rotation replaced, within the grace: that rotation's answer. */
  | { kind: 'retry', answer: IssuedTokens, session: SessionRecord }
  /** A token the session issued and rotated away from, outside the grace: someone kept a copy. */
  | { kind: 'reuse', session: SessionRecord }
  /** Names no live session, or is not one of ours: nothing to say about any session. */
  | { kind: 'unknown' }

export function createSessions (deps: Dependencies): Sessions {
  const { store, tokens, refreshTokens, vault, loginFlow } = deps
  const now = deps.now ?? Date.now
  // One warning per outage, not one per login while it lasts.
  let storeDown = false

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

  async function issue (session: SessionRecord, refreshToken: string | undefined, request: FastifyRequest | undefined): Promise<IssuedTokens> {
    const extra = deps.extendClaims === undefined ? undefined : await deps.extendClaims(session.member, request)
    return answer(session, tokens.sign({ userid: session.userid, corpid: session.corpid, sid: session.sid }, extra), refreshToken)
  }

  // Access tokens already out stay verifiable until they expire: the revocation must outlive them.
  // Given what the caller holds of each session, the store need not read it again.
  const revoke = (sessions: readonly RevokedSession[]) => stored(() => store.revoke(sessions, now() + deps.accessTtl * 1000))

  /**
   * Runs a host's hook. Its failure is logged and the operation goes on, unless it threw one of
   * the errors table's, which the host means as an answer: that one is thrown on.
   */
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

  /** Ends sessions the plugin itself found compromised or forbidden, telling onRevoke. */
  async function end (session: SessionRecord, request: FastifyRequest | undefined): Promise<void> {
    await revoke([session])
    await hook('onRevoke', [session.member, session.sid, request], request)
  }

  async function judge (presented: PresentedToken): Promise<Verdict> {
    const session = await stored(() => store.get(presented.sid))
    if (session === null) return { kind: 'unknown' }
    if (hashOf(presented.token) === session.refreshHash) return { kind: 'current', session }
    // Only a token provably ours may end a session: a sid alone is no secret (the JWT carries it).
    if (presented.generation >= session.generation || !refreshTokens.authentic(presented)) return { kind: 'unknown' }
    const retried = presented.generation === session.generation - 1 ? retryAnswer(session, presented) : null
    return retried === null ? { kind: 'reuse', session } : { kind: 'retry', answer: retried, session }
  }

  /** The last rotation's answer again, if `presented` is what it replaced and the grace still runs. */
  function retryAnswer (session: SessionRecord, presented: PresentedToken): IssuedTokens | null {
    const { replay } = session
    if (replay === undefined || replay.until <= now()) return null
    // Whichever instance made the rotation, under whichever key of jwt.keys it signed with first.
    const next = refreshTokens.nextCandidates(presented).find((candidate) => hashOf(candidate) === session.refreshHash)
    const accessToken = next === undefined ? null : vault.open(replay.accessToken)
    return accessToken === null || next === undefined ? null : answer(session, accessToken, next)
  }

  /** The rotation of the session's current token; null when another refresh with it won the race. */
  async function rotate (session: SessionRecord, presented: PresentedToken, context: LoginContext): Promise<IssuedTokens | null> {
    let { member, checkedAt } = session
    if (now() - checkedAt > deps.recheckInterval * 1000) {
      try {
        member = await loginFlow.checkMember(session.corpid, session.userid, context)
      } catch (error) {
        if (error instanceof UserForbiddenError) await end(session, context.request)
        throw error
      }
      checkedAt = now()
    }
    const next = refreshTokens.next(presented)
    const rotated: SessionRecord = {
      ...session,
      member,
      checkedAt,
      generation: session.generation + 1,
      refreshHash: hashOf(next),
      expiresAt: now() + deps.refreshTtl * 1000
    }
    const issued = await issue(rotated, next, context.request)
    // Sealed with a key derived from the JWT key (whoever could open it could sign access tokens
    // anyway), handed out only until the grace ends, overwritten by the next rotation. A rotation
    // without grace drops the previous rotation's answer, which the spread above copied.
    rotated.replay = deps.reuseGrace > 0
      ? { accessToken: vault.seal(issued.access_token), until: now() + deps.reuseGrace * 1000 }
      : undefined
    if (!await stored(() => store.rotate(rotated, session.refreshHash))) return null
    await hook('onRefresh', [member, session.sid, context.request], context.request)
    return issued
  }

  async function settle (verdict: Verdict, request: FastifyRequest | undefined): Promise<IssuedTokens> {
    if (verdict.kind === 'retry') return verdict.answer
    if (verdict.kind === 'reuse') await end(verdict.session, request)
    throw new RefreshInvalidError()
  }

  return {
    async start (login, { log, request }) {
      const sid = randomUUID()
      const refreshToken = refreshTokens.first(sid)
      const session: SessionRecord = {
        sid,
        corpid: login.member.corpid,
        userid: login.member.userid,
        member: login.member,
        generation: 0,
        refreshHash: hashOf(refreshToken),
        checkedAt: now(),
        expiresAt: now() + deps.refreshTtl * 1000,
        startedAt: now()
      }
      const issued = await issue(session, refreshToken, request)
      try {
        // Independent writes: one round trip's wait on Redis, not two.
        await Promise.all([
          store.save(session),
          store.saveSessionKey(session.corpid, session.userid, vault.seal(login.sessionKey), deps.refreshTtl * 1000, login.answeredAt)
        ])
        storeDown = false
      } catch (error) {
        if (!(error instanceof StoreDownError)) throw error
        // The member is verified: let them in for one access token's life rather than not at all.
        if (!storeDown) log.warn('wecom: session store unavailable, logins answered without a refresh token until it returns')
        storeDown = true
        delete issued.refresh_token
        delete issued.refresh_expires_in
      }
      try {
        await hook('onLogin', [login.member, sid, request], request)
      } catch (error) {
        // The host refused the login: the session it was told of must not live on.
        await revoke([session]).catch(() => {})
        throw error
      }
      return issued
    },

    async refresh (refreshToken, context) {
      const presented = refreshTokens.parse(refreshToken)
      if (presented === null) throw new RefreshInvalidError()
      const verdict = await judge(presented)
      if (verdict.kind !== 'current') return settle(verdict, context.request)
      const rotated = await rotate(verdict.session, presented, context)
      if (rotated !== null) return rotated
      // Another refresh with this token rotated first (a double tap): within the grace its answer
      // is this one's too; without it, the token was used twice.
      const after = await judge(presented)
      return settle(after.kind === 'current' ? { kind: 'unknown' } : after, context.request)
    },

    async endByRefreshToken (refreshToken, context = {}) {
      const presented = refreshTokens.parse(refreshToken)
      if (presented === null) return
      // Any token the session issued ends it, as its holder asked; RFC 7009 answers alike either way.
      const verdict = await judge(presented)
      if (verdict.kind === 'unknown') return
      await revoke([verdict.session])
      await hook('onLogout', [verdict.session.member, presented.sid, context.request], context.request)
    },

    async logout (member, sid, context = {}) {
      // The access token named the session's member with its sid: its index is known.
      await revoke([{ sid, corpid: member.corpid, userid: member.userid }])
      await hook('onLogout', [member, sid, context.request], context.request)
    },

    async revokeSession (sid, context = {}) {
      // Read only for the hook, which is told whose session it was.
      const session = deps.hooks?.onRevoke === undefined ? null : await stored(() => store.get(sid))
      await revoke([session ?? sid])
      await hook('onRevoke', [session?.member, sid, context.request], context.request)
    },

    async revokeUser (corpId, userid, context = {}) {
      // Every access token that passes the guard expires within accessTtl of its issue: by then
      // the not-before has nothing left to refuse. A time in the future is no licence to refuse
      // tokens not issued yet.
      const notBefore = Math.min(now(), context.at ?? Infinity)
      const ended = await stored(() => store.revokeMember({ corpid: corpId, userid, notBefore, until: notBefore + deps.accessTtl * 1000 }))
      // A refresh racing with this may have rotated one of them and signed an access token after
      // the not-before: the session's own revocation refuses that one too.
      if (ended.length > 0) await revoke(ended.map((sid) => ({ sid, corpid: corpId, userid })))
      await hook('onRevoke', [{ corpid: corpId, userid }, undefined, context.request], context.request)
    },

    async decrypt (member, data) {
      const input = encryptedUserData(data)
      if (input === null) throw new DecryptError()
      const sealed = await stored(() => store.sessionKeyOf(member.corpid, member.userid))
      const sessionKey = sealed === null ? null : vault.open(sealed)
      const decrypted = sessionKey === null ? null : decryptUserData(sessionKey, input.encryptedData, input.iv)
      if (decrypted === null) throw new DecryptError()
      const watermark = decrypted.watermark as { appid?: unknown } | undefined
      if (deps.miniprogramAppId !== undefined && watermark?.appid !== deps.miniprogramAppId) throw new DecryptError()
      return decrypted
    }
  }
}

/** An error of the errors table (src/errors.ts): a hook that throws one means it as the answer. */

/** A store operation, its backend's failure answered as 503 WECOM_STORE_UNAVAILABLE. */
export async function stored<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw error instanceof StoreDownError ? new StoreUnavailableError() : error
  }
}
