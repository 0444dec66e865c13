import type { AccessClaims } from '../jwt.js'
import { memberKey, type Revocation } from '../stores/store.js'

/**
 * The revocations this process knows of, checked on every authenticated request without a round
 * trip: ended sessions, and off-boarded members' not-before times. An entry lives only as long as
 * an access token it refuses could: after that the token is refused as expired anyway, so the maps
 * stay as small as the recent revocations.
 */
export class Revocations {
  readonly #sessions = new Map<string, number>()
  readonly #members = new Map<string, { notBefore: number, until: number }>()
  readonly #now: () => number
  #sweepAt = 1024

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  add (revocations: readonly Revocation[]): void {
    for (const revocation of revocations) {
      if ('sid' in revocation) {
        const { sid, until } = revocation
        if (until > (this.#sessions.get(sid) ?? 0)) this.#sessions.set(sid, until)
      } else {
        const key = memberKey(revocation.corpid, revocation.userid)
        const known = this.#members.get(key)
        // A later off-boarding moves the line forward; replays of older ones never move it back.
        if (known === undefined || revocation.notBefore >= known.notBefore) {
          this.#members.set(key, { notBefore: revocation.notBefore, until: Math.max(revocation.until, known?.until ?? 0) })
        }
      }
    }
    if (this.#sessions.size + this.#members.size >= this.#sweepAt) this.#sweep()
  }

  /**
   * Whether a token with these claims is refused: its session ended, or its member was off-boarded
   * at or after its issue (epoch ms `iat_ms`). Two map lookups: this runs on every request. The
   * member's key is built only while some off-boarding is recent, rather than kept with every
   * cached token.
   */
  refuses (claims: Pick<AccessClaims, 'sid' | 'corpid' | 'userid' | 'iat_ms'>): boolean {
    const now = this.#now()
    const until = this.#sessions.get(claims.sid)
    // Up to `until` itself: fast-jwt still accepts a token at the millisecond of its exp, which
    // for a token issued at the revocation is `until`.
    if (until !== undefined && until >= now) return true
    if (this.#members.size === 0) return false
    const line = this.#members.get(memberKey(claims.corpid, claims.userid))
    return line !== undefined && line.until >= now && claims.iat_ms <= line.notBefore
  }

  #sweep (): void {
    const now = this.#now()
    for (const [sid, until] of this.#sessions) {
      if (until < now) this.#sessions.delete(sid)
    }
    for (const [key, { until }] of this.#members) {
      if (until < now) this.#members.delete(key)
    }
    this.#sweepAt = Math.max(1024, (this.#sessions.size + this.#members.size) * 2)
  }
}
