import { createHash } from 'node:crypto'
import type { RedisClient } from './connection.js'

/** A Lua script sent by its sha, and in full only when Redis does not know it (first use, restart). */
class Script {
  readonly #lua: string
  readonly #sha: string

  constructor (lua: string) {
    this.#lua = lua
    this.#sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (client: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return await client.eval(this.#lua, keys.length, ...keys, ...args)
    }
  }
}

// Every script touches keys of one hash slot only, all passed in KEYS, so that the store runs on a
// Redis Cluster as on one server: a session's key is tagged by its sid, a member's keys by the
// member, the revocation records share one tag. What spans two of them is done in steps, each
// ordered so that a step cut off (a crash, a failover) never lets a session outlive an
// off-boarding: see save, rotate and revokeMember.

/**
 * KEYS: member's session index. ARGV: sid, expiresAt, now. Indexes a session scored by its
 * expiry, so that ended sessions fall out by score in O(log n) rather than by a scan of every sid;
 * the index lives at least as long as its longest session.
 */
export const INDEX = new Script(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
`)

/** KEYS: session. ARGV: json, ttl ms, expected refresh hash. 1 if replaced. */
export const ROTATE = new Script(`
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).refreshHash ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// After an entry scored by `until` went into the record KEYS[1]: forgets entries whose access
// tokens have all expired (an entry lives through the millisecond `until` itself, as in
// sessions/revocations.ts), keeps the record as long as its newest entry, and tells every instance.
// ARGV[1..4]: until, now, channel, message.
const TRIM_AND_PUBLISH = `
local untilMs, now = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local ttl = untilMs - now + 1
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
`

/**
 * KEYS: revoked-sessions record. ARGV: until, now, channel, message, sids... Records the sessions
 * as revoked until `until`, never shortening an earlier entry.
 */
export const RECORD_SESSIONS = new Script(`
for i = 5, #ARGV do
  local known = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not known or tonumber(known) < tonumber(ARGV[1]) then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
end
${TRIM_AND_PUBLISH}
`)

/** KEYS: not-before record. ARGV: until, now, channel, message, entry. One entry per revokeUser. */
export const RECORD_MEMBER = new Script(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
${TRIM_AND_PUBLISH}
`)

/**
 * KEYS: member's session index, member's session_key. ARGV: not-before. Forgets the session_key
 * if it came from an answer at or before the not-before; answers the sids indexed.
 */
export const DROP_MEMBER = new Script(`
local kept = redis.call('GET', KEYS[2])
if kept and (tonumber(string.match(kept, '^(%d+)%.')) or 0) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[2]) end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

/**
 * KEYS: session. ARGV: not-before. Ends the session if it started at or before the not-before
 * (a replayed event must not end a session made after it); 1 when it is gone.
 */
export const END_IF_STARTED = new Script(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 1 end
if (cjson.decode(raw).startedAt or 0) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

/**
 * KEYS: revoked-sessions record, not-before record. ARGV: now. Through Lua, whose replies are
 * RESP2-shaped: two flat [entry, until, ...] lists whatever protocol the client speaks.
 */
export const LIVE_REVOCATIONS = new Script(`
return {
  redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES')
}
`)

/**
 * KEYS: a value kept by its time. ARGV: at (an integer), `<at>.<value>`, ttl ms. Keeps the newest
 * by `at`: an older one arriving last (a jscode2session answer's session_key, a suite_ticket push)
 * does not replace a newer one. 1 when it kept this one.
 */
export const SAVE_NEWEST = new Script(`
local kept = redis.call('GET', KEYS[1])
local keptAt = kept and tonumber(string.match(kept, '^(%d+)%.'))
if keptAt and keptAt > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

/** KEYS: token. ARGV: token value. Deletes the token only if it still is that value. */
export const DELETE_TOKEN_IF = new Script(`
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).value == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** KEYS: a lock or a delivery's claim. ARGV: owner. Releases it only if this owner still holds it. */
export const RELEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** KEYS: counter. ARGV: window ms, count. Counts requests; the window starts with the first. */
export const COUNT = new Script(`
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }
`)

/** KEYS: delivery. ARGV: claim id, lease ms. Extends the claim while it is still this id's. */
export const RENEW_DELIVERY = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/**
 * KEYS: delivery. ARGV: claim id, lease ms. Claims the delivery for the lease unless a claim or
 * 'done' is there: 'new', 'done' or 'busy'. '1' is done too: what an earlier version's
 * firstDelivery kept, which acted on the delivery at once (a rolling upgrade).
 */
export const CLAIM_DELIVERY = new Script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'new' end
local kept = redis.call('GET', KEYS[1])
if kept == 'done' or kept == '1' then return 'done' end
return 'busy'
`)
