import type { FastifyRequest } from 'fastify'
import type { Surface } from '../member.js'
import type { SessionRecord } from '../stores/store.js'
import { stored, type SessionKit } from './kit.js'

/** One session of a member's list, as the member and the host's admin pages see it. */
export interface SessionSummary {
  sid: string
  surface: Surface
  /** ISO 8601: when the login made it. */
  created: string
  /** ISO 8601: its last refresh; `null` before the first. */
  refreshed: string | null
  /** The login request's User-Agent, when it sent one. */
  userAgent: string | null
  /** Whether it is the session of the request that asked. */
  current: boolean
}

function summary (session: SessionRecord, currentSid: string | undefined): SessionSummary {
  return {
    sid: session.sid,
    surface: session.surface ?? 'miniprogram',
    created: new Date(session.startedAt ?? 0).toISOString(),
    refreshed: session.refreshedAt === undefined ? null : new Date(session.refreshedAt).toISOString(),
    userAgent: session.userAgent ?? null,
    current: session.sid === currentSid
  }
}

/** A member's live sessions, whatever surface made them, oldest first; `currentSid` marked. */
export async function listSessions (kit: SessionKit, corpId: string, userid: string, currentSid?: string): Promise<SessionSummary[]> {
  const sessions = await stored(() => kit.deps.store.sessionsOf(corpId, userid))
  return sessions.map((session) => summary(session, currentSid))
}

/**
 * Ends the member's sessions that `keep` does not keep (their own only: a sid of someone else's
 * is never touched), as revokeSession would, with onRevoke told of each. Resolves with how many.
 */
export async function endSessions (kit: SessionKit, corpId: string, userid: string, keep: (sid: string) => boolean, request?: FastifyRequest): Promise<number> {
  const sessions = await stored(() => kit.deps.store.sessionsOf(corpId, userid))
  const ending = sessions.filter((session) => !keep(session.sid))
  if (ending.length === 0) return 0
  await kit.revoke(ending)
  for (const session of ending) await kit.hook('onRevoke', [session.member, session.sid, request], request)
  return ending.length
}
