import { randomUUID } from 'node:crypto'
import { DecryptError } from '../errors.js'
import type { WecomMember } from '../options.js'
import { StoreDownError, type SessionRecord } from '../stores/store.js'
import type { LoginContext, VerifiedLogin, WecomProfile } from '../member.js'
import { createKit, stored, type IssuedTokens, type OperationContext, type SessionDependencies, type SessionKit } from './kit.js'
import { hashOf } from './refresh-tokens.js'
import { endSessions, listSessions, type SessionSummary } from './list.js'
import { endByRefreshToken, refresh } from './rotation.js'
import { decryptUserData, encryptedUserData } from './vault.js'

export type { IssuedTokens } from './kit.js'
export type { SessionSummary } from './list.js'

export interface EncryptedUserData { encryptedData: string, iv: string }

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
  /** The private fields sealed with session `sid` (a `snsapi_privateinfo` web login); null without. */
  profile (sid: string): Promise<WecomProfile | null>
  /** The member's live sessions, every surface's, oldest first; `currentSid` marked `current`. */
  list (corpId: string, userid: string, currentSid?: string): Promise<SessionSummary[]>
  /** Ends the member's own sessions that `keep` does not keep; how many ended. */
  end (corpId: string, userid: string, keep: (sid: string) => boolean, context?: OperationContext): Promise<number>
}

export function createSessions (deps: SessionDependencies): Sessions {
  const kit = createKit(deps)
  return {
    start: starter(kit),
    refresh: (refreshToken, context) => refresh(kit, refreshToken, context),
    endByRefreshToken: (refreshToken, context) => endByRefreshToken(kit, refreshToken, context),
    logout: (member, sid, context) => logout(kit, member, sid, context),
    revokeSession: (sid, context) => revokeSession(kit, sid, context),
    revokeUser: (corpId, userid, context) => revokeUser(kit, corpId, userid, context),
    decrypt: (member, data) => decrypt(kit, member, data),
    async profile (sid) {
      const sealed = (await stored(() => kit.deps.store.get(sid)))?.profile
      const opened = sealed === undefined ? null : kit.deps.vault.open(sealed)
      return opened === null ? null : JSON.parse(opened) as WecomProfile
    },
    list: (corpId, userid, currentSid) => listSessions(kit, corpId, userid, currentSid),
    end: (corpId, userid, keep, context = {}) => endSessions(kit, corpId, userid, keep, context.request)
  }
}

/** The login request's User-Agent, bounded, for the member's session list. */
function userAgentOf (request: LoginContext['request']): { userAgent?: string } {
  const agent = request?.headers['user-agent']
  return typeof agent === 'string' && agent !== '' ? { userAgent: agent.slice(0, 256) } : {}
}

/** Sessions.start, which warns once per outage of the store, not once per login while it lasts. */
function starter (kit: SessionKit): Sessions['start'] {
  const { deps, now } = kit
  let storeDown = false
  return async (login, { log, request }) => {
    const sid = randomUUID()
    const refreshToken = deps.refreshTokens.first(sid)
    const startedAt = now()
    const session: SessionRecord = {
      sid,
      corpid: login.member.corpid,
      userid: login.member.userid,
      member: login.member,
      generation: 0,
      refreshHash: hashOf(refreshToken),
      checkedAt: startedAt,
      expiresAt: startedAt + deps.refreshTtl * 1000,
      startedAt,
      surface: login.surface ?? 'miniprogram',
      ...(login.suiteId === undefined ? {} : { suiteId: login.suiteId }),
      ...userAgentOf(request),
      ...(login.profile === undefined ? {} : { profile: deps.vault.seal(JSON.stringify(login.profile)) })
    }
    const issued = await kit.issue(session, refreshToken, request)
    try {
      // Independent writes: one round trip's wait on Redis, not two.
      await Promise.all([
        deps.store.save(session),
        login.sessionKey === undefined
          ? undefined
          : deps.store.saveSessionKey(session.corpid, session.userid, deps.vault.seal(login.sessionKey), deps.refreshTtl * 1000, login.answeredAt)
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
      await kit.hook('onLogin', [login.member, sid, request], request)
    } catch (error) {
      // The host refused the login: the session it was told of must not live on.
      await kit.revoke([session]).catch(() => {})
      throw error
    }
    return issued
  }
}

async function logout (kit: SessionKit, member: WecomMember, sid: string, context: OperationContext = {}): Promise<void> {
  // The access token named the session's member with its sid: its index is known.
  await kit.revoke([{ sid, corpid: member.corpid, userid: member.userid }])
  await kit.hook('onLogout', [member, sid, context.request], context.request)
}

async function revokeSession (kit: SessionKit, sid: string, context: OperationContext = {}): Promise<void> {
  // Read only for the hook, which is told whose session it was.
  const session = kit.deps.hooks?.onRevoke === undefined ? null : await stored(() => kit.deps.store.get(sid))
  await kit.revoke([session ?? sid])
  await kit.hook('onRevoke', [session?.member, sid, context.request], context.request)
}

async function revokeUser (kit: SessionKit, corpId: string, userid: string, context: OperationContext & { at?: number } = {}): Promise<void> {
  // Every access token that passes the guard expires within accessTtl of its issue: by then
  // the not-before has nothing left to refuse. A time in the future is no licence to refuse
  // tokens not issued yet.
  const notBefore = Math.min(kit.now(), context.at ?? Infinity)
  const ended = await stored(() => kit.deps.store.revokeMember({ corpid: corpId, userid, notBefore, until: notBefore + kit.deps.accessTtl * 1000 }))
  // A refresh racing with this may have rotated one of them and signed an access token after
  // the not-before: the session's own revocation refuses that one too.
  if (ended.length > 0) await kit.revoke(ended.map((sid) => ({ sid, corpid: corpId, userid })))
  await kit.hook('onRevoke', [{ corpid: corpId, userid }, undefined, context.request], context.request)
}

async function decrypt (kit: SessionKit, member: { corpid: string, userid: string }, data: unknown): Promise<Record<string, unknown>> {
  const input = encryptedUserData(data)
  if (input === null) throw new DecryptError()
  const sealed = await stored(() => kit.deps.store.sessionKeyOf(member.corpid, member.userid))
  const sessionKey = sealed === null ? null : kit.deps.vault.open(sealed)
  const decrypted = sessionKey === null ? null : decryptUserData(sessionKey, input.encryptedData, input.iv)
  if (decrypted === null) throw new DecryptError()
  const watermark = decrypted.watermark as { appid?: unknown } | undefined
  if (kit.deps.miniprogramAppId !== undefined && watermark?.appid !== kit.deps.miniprogramAppId) throw new DecryptError()
  return decrypted
}
