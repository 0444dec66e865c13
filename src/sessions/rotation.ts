import type { FastifyRequest } from 'fastify'
import { CorpNotAllowedError, RefreshInvalidError, UserForbiddenError } from '../errors.js'
import type { SessionRecord } from '../stores/store.js'
import type { LoginContext } from '../member.js'
import { stored, type IssuedTokens, type OperationContext, type SessionKit } from './kit.js'
import { hashOf, type PresentedToken } from './refresh-tokens.js'

// A refresh token's life after login: each refresh rotates it, the one it replaced gets that
// rotation's answer again for the grace, and any older one presented ends the session.

/** What a presented refresh token is to the session it names. */
type Verdict =
  | { kind: 'current', session: SessionRecord }
  /** The token the last rotation replaced, within the grace: that rotation's answer. */
  | { kind: 'retry', answer: IssuedTokens, session: SessionRecord }
  /** A token the session issued and rotated away from, outside the grace: someone kept a copy. */
  | { kind: 'reuse', session: SessionRecord }
  /** Names no live session, or is not one of ours: nothing to say about any session. */
  | { kind: 'unknown' }

export async function refresh (kit: SessionKit, refreshToken: string, context: LoginContext): Promise<IssuedTokens> {
  const presented = kit.deps.refreshTokens.parse(refreshToken)
  if (presented === null) throw new RefreshInvalidError()
  const verdict = await judge(kit, presented)
  if (verdict.kind !== 'current') return settle(kit, verdict, context.request)
  const rotated = await rotate(kit, verdict.session, presented, context)
  if (rotated !== null) return rotated
  // Another refresh with this token rotated first (a double tap): within the grace its answer
  // is this one's too; without it, the token was used twice.
  const after = await judge(kit, presented)
  return settle(kit, after.kind === 'current' ? { kind: 'unknown' } : after, context.request)
}

/** Ends the session a refresh token belongs to; a token naming no live session changes nothing. */
export async function endByRefreshToken (kit: SessionKit, refreshToken: string, context: OperationContext = {}): Promise<void> {
  const presented = kit.deps.refreshTokens.parse(refreshToken)
  if (presented === null) return
  // Any token the session issued ends it, as its holder asked; RFC 7009 answers alike either way.
  const verdict = await judge(kit, presented)
  if (verdict.kind === 'unknown') return
  await kit.revoke([verdict.session])
  await kit.hook('onLogout', [verdict.session.member, presented.sid, context.request], context.request)
}

async function judge (kit: SessionKit, presented: PresentedToken): Promise<Verdict> {
  const session = await stored(() => kit.deps.store.get(presented.sid))
  if (session === null) return { kind: 'unknown' }
  if (hashOf(presented.token) === session.refreshHash) return { kind: 'current', session }
  // Only a token provably ours may end a session: a sid alone is no secret (the JWT carries it).
  if (presented.generation >= session.generation || !kit.deps.refreshTokens.authentic(presented)) return { kind: 'unknown' }
  const retried = presented.generation === session.generation - 1 ? retryAnswer(kit, session, presented) : null
  return retried === null ? { kind: 'reuse', session } : { kind: 'retry', answer: retried, session }
}

/** The last rotation's answer again, if `presented` is what it replaced and the grace still runs. */
function retryAnswer (kit: SessionKit, session: SessionRecord, presented: PresentedToken): IssuedTokens | null {
  const { replay } = session
  if (replay === undefined || replay.until <= kit.now()) return null
  // Whichever instance made the rotation, under whichever key of jwt.keys it signed with first.
  const next = kit.deps.refreshTokens.nextCandidates(presented).find((candidate) => hashOf(candidate) === session.refreshHash)
  const accessToken = next === undefined ? null : kit.deps.vault.open(replay.accessToken)
  return accessToken === null || next === undefined ? null : kit.answer(session, accessToken, next)
}

/**
 * A suite's corp that uninstalled it (or installed it again since) ends the session at once, as
 * does a suite this server no longer serves (`suites` changed while its sessions lived).
 */
async function stillInstalled (kit: SessionKit, session: SessionRecord, context: LoginContext): Promise<void> {
  const { suiteId } = session
  if (suiteId === undefined) return
  const { installed } = kit.deps.loginFlow
  if (installed !== undefined && await installed(suiteId, session.corpid, session.startedAt ?? 0)) return
  await kit.end(session, context.request)
  throw new CorpNotAllowedError()
}

/** The rotation of the session's current token; null when another refresh with it won the race. */
async function rotate (kit: SessionKit, session: SessionRecord, presented: PresentedToken, context: LoginContext): Promise<IssuedTokens | null> {
  const { deps, now } = kit
  let { member, checkedAt } = session
  const { suiteId } = session
  await stillInstalled(kit, session, context)
  if (now() - checkedAt > deps.recheckInterval * 1000) {
    try {
      member = await deps.loginFlow.checkMember(session.corpid, session.userid, context, session.surface, suiteId)
      // user/get knows no open_userid: the login's stays with the member.
      if (session.member.open_userid !== undefined) member = Object.assign({}, member, { open_userid: session.member.open_userid })
    } catch (error) {
      if (error instanceof UserForbiddenError) await kit.end(session, context.request)
      throw error
    }
    // An uninstall during the recheck's call to WeCom refuses this refresh too, as a login's.
    await stillInstalled(kit, session, context)
    checkedAt = now()
  }
  const next = deps.refreshTokens.next(presented)
  // Object.assign, not a spread with properties after it (CONTRIBUTING.md, House rules).
  const rotated: SessionRecord = Object.assign({}, session, {
    member,
    checkedAt,
    generation: session.generation + 1,
    refreshedAt: now(),
    refreshHash: hashOf(next),
    expiresAt: now() + deps.refreshTtl * 1000
  })
  const issued = await kit.issue(rotated, next, context.request)
  // Sealed with a key derived from the JWT key (whoever could open it could sign access tokens
  // anyway), handed out only until the grace ends, overwritten by the next rotation. A rotation
  // without grace drops the previous rotation's answer, which the spread above copied.
  rotated.replay = deps.reuseGrace > 0
    ? { accessToken: deps.vault.seal(issued.access_token), until: now() + deps.reuseGrace * 1000 }
    : undefined
  if (!await stored(() => deps.store.rotate(rotated, session.refreshHash))) return null
  await kit.hook('onRefresh', [member, session.sid, context.request], context.request)
  return issued
}

async function settle (kit: SessionKit, verdict: Verdict, request: FastifyRequest | undefined): Promise<IssuedTokens> {
  if (verdict.kind === 'retry') return verdict.answer
  if (verdict.kind === 'reuse') await kit.end(verdict.session, request)
  throw new RefreshInvalidError()
}
