import { createHash, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { randomBytesPooled } from '../random.js'
import { DecryptError, RefreshInvalidError, StoreUnavailableError, UserForbiddenError } from '../errors.js'
import type { AccessTokens } from '../jwt.js'
import type { LoginContext, LoginFlow, VerifiedLogin } from '../login.js'
import type { WecomMember } from '../options.js'
import { StoreDownError, type SessionRecord, type SessionStore } from '../stores/store.js'
import { decryptUserData, type Vault } from './vault.js'

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

export interface Sessions {
  start (login: VerifiedLogin, log: FastifyBaseLogger): Promise<IssuedTokens>
  refresh (refreshToken: string, context: LoginContext): Promise<IssuedTokens>
  /** Ends the session a refresh token belongs to; an unknown token is refused. */
  endByRefreshToken (refreshToken: string): Promise<void>
  revokeSession (sid: string): Promise<void>
  revokeUser (corpId: string, userid: string): Promise<void>
  decrypt (member: { corpid: string, userid: string }, data: EncryptedUserData): Promise<Record<string, unknown>>
}

interface Dependencies {
  store: SessionStore
  tokens: AccessTokens
  vault: Vault
  loginFlow: LoginFlow
  /** Seconds. */
  accessTtl: number
  refreshTtl: number
  recheckInterval: number
  miniprogramAppId?: string
  now?: () => number
}

/** How many rotated-away refresh tokens a session remembers to recognise their reuse. */
const ROTATED_KEPT = 16

export function createSessions (deps: Dependencies): Sessions {
  const { store, tokens, vault, loginFlow } = deps
  const now = deps.now ?? Date.now
  // One warning per outage, not one per login while it lasts.
  let storeDown = false

  function issue (session: SessionRecord, refreshToken: string | undefined): IssuedTokens {
    const issued: IssuedTokens = {
      access_token: tokens.sign({ userid: session.userid, corpid: session.corpid, sid: session.sid }),
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
  const revoke = (sids: readonly string[]) => stored(() => store.revoke(sids, now() + deps.accessTtl * 1000))

  /** The session a refresh token names, and whether the token is its current one. */
  async function lookup (refreshToken: string): Promise<{ session: SessionRecord, hash: string }> {
    const sid = sidOf(refreshToken)
    const session = sid === undefined ? null : await stored(() => store.get(sid))
    if (session === null) throw new RefreshInvalidError()
    const hash = hashOf(refreshToken)
    if (hash === session.refreshHash) return { session, hash }
    // A token this session already rotated away from: someone kept a copy. End it for both.
    if (session.rotatedHashes.includes(hash)) await revoke([session.sid])
    throw new RefreshInvalidError()
  }

  return {
    async start (login, log) {
      const refreshToken = newRefreshToken(randomUUID())
      const session: SessionRecord = {
        sid: sidOf(refreshToken)!,
        corpid: login.member.corpid,
        userid: login.member.userid,
        member: login.member,
        refreshHash: hashOf(refreshToken),
        rotatedHashes: [],
        checkedAt: now(),
        expiresAt: now() + deps.refreshTtl * 1000
      }
      try {
        await store.save(session)
        await store.saveSessionKey(session.corpid, session.userid, vault.seal(login.sessionKey), deps.refreshTtl * 1000)
      } catch (error) {
        if (!(error instanceof StoreDownError)) throw error
        // The member is verified: let them in for one access token's life rather than not at all.
        if (!storeDown) log.warn('wecom: session store unavailable, logins answered without a refresh token until it returns')
        storeDown = true
        return issue(session, undefined)
      }
      storeDown = false
      return issue(session, refreshToken)
    },

    async refresh (refreshToken, context) {
      const { session, hash } = await lookup(refreshToken)
      let { member, checkedAt } = session
      if (now() - checkedAt > deps.recheckInterval * 1000) {
        try {
          member = await loginFlow.checkMember(session.corpid, session.userid, context)
        } catch (error) {
          if (error instanceof UserForbiddenError) await revoke([session.sid])
          throw error
        }
        checkedAt = now()
      }
      const next = newRefreshToken(session.sid)
      const rotated: SessionRecord = {
        ...session,
        member,
        checkedAt,
        refreshHash: hashOf(next),
        rotatedHashes: [hash, ...session.rotatedHashes].slice(0, ROTATED_KEPT),
        expiresAt: now() + deps.refreshTtl * 1000
      }
      if (!await stored(() => store.rotate(rotated, hash))) {
        // Another refresh with the same token won the race: the token was used twice.
        await revoke([session.sid])
        throw new RefreshInvalidError()
      }
      return issue(rotated, next)
    },

    async endByRefreshToken (refreshToken) {
      const { session } = await lookup(refreshToken)
      await revoke([session.sid])
    },

    revokeSession: (sid) => revoke([sid]),

    async revokeUser (corpId, userid) {
      const sids = await stored(() => store.sessionsOf(corpId, userid))
      if (sids.length > 0) await revoke(sids)
    },

    async decrypt (member, data) {
      const sealed = await stored(() => store.sessionKeyOf(member.corpid, member.userid))
      const sessionKey = sealed === null ? null : vault.open(sealed)
      const decrypted = sessionKey === null ? null : decryptUserData(sessionKey, data.encryptedData, data.iv)
      if (decrypted === null) throw new DecryptError()
      const watermark = decrypted.watermark as { appid?: unknown } | undefined
      if (deps.miniprogramAppId !== undefined && watermark?.appid !== deps.miniprogramAppId) throw new DecryptError()
      return decrypted
    }
  }
}

async function stored<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw error instanceof StoreDownError ? new StoreUnavailableError() : error
  }
}

/** `<sid>.<256 random bits>`: the sid finds the session in one read, the rest is the secret. */
function newRefreshToken (sid: string): string {
  return `${sid}.${randomBytesPooled(32).toString('base64url')}`
}

function sidOf (refreshToken: string): string | undefined {
  const match = /^([\w-]{16,64})\.[\w-]{43}$/.exec(refreshToken)
  return match?.[1]
}

function hashOf (refreshToken: string): string {
  return createHash('sha256').update(refreshToken).digest('base64url')
}
