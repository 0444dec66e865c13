import { createHash } from 'node:crypto'

/**
 * The store's keys under `prefix`. Tagged so that what one step touches shares a hash slot on a
 * Cluster: a session by its sid, a member's index and session_key by the member, the two
 * revocation records together. The others are each alone in what touches them.
 */
export const redisKeys = {
  session: (prefix: string, sid: string) => `${prefix}session:{${sid}}`,
  memberIndex: (prefix: string, corpid: string, userid: string) => `${prefix}member:${memberTag(corpid, userid)}`,
  sessionKey: (prefix: string, corpid: string, userid: string) => `${prefix}session-key:${memberTag(corpid, userid)}`,
  revokedSessions: (prefix: string) => `${prefix}{revocations}:sessions`,
  notBefore: (prefix: string) => `${prefix}{revocations}:members`,
  token: (prefix: string, key: string) => `${prefix}token:${key}`,
  tokenLock: (prefix: string, key: string) => `${prefix}token-lock:${key}`,
  rate: (prefix: string, key: string) => `${prefix}rate:${key}`,
  delivery: (prefix: string, key: string) => `${prefix}delivery:${key}`,
  suiteTicket: (prefix: string, suiteId: string) => `${prefix}suite-ticket:${suiteId}`,
  /** One hash per suite, a field per corp: a listing reads one key, on one node of a Cluster. */
  suiteCorps: (prefix: string, suiteId: string) => `${prefix}suite-corps:{${suiteId}}`
}

/**
 * A member's hash tag: a digest, so that a userid holding braces cannot move the tag, and short,
 * since it is in every member key.
 */
function memberTag (corpid: string, userid: string): string {
  return `{${createHash('sha256').update(corpid).update('\u0000').update(userid).digest('base64url').slice(0, 16)}}`
}
