import type { AccessClaims } from '../jwt.js'
import { memberKey, WHOLE_CORP, type Revocation } from '../stores/store.js'

/**
 * The revocations this process knows of, checked on every authenticated request without a round
 * trip: ended sessions, and off-boarded members' not-before times. An entry lives only as long as
 * an access token it refuses could: after that the token is refused as expired anyway, so the maps
 * stay as small as the recent revocations.
 */
export class Revocations {
  readonly #sessions = new Map<string, number>()
  readonly #members = new Map<string, { notBefore: number, until: number }>()
  /** Corps that uninstalled a suite, by corpid: apart, so that a member's check stays one lookup. */
  readonly #corps = new Map<string, { notBefore: number, until: number }>()
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
      } else if (revocation.userid === WHOLE_CORP) {
        moveLine(this.#corps, revocation.corpid, revocation)
      } else {
        moveLine(this.#members, memberKey(revocation.corpid, revocation.userid), revocation)
      }
    }
    if (this.#sessions.size + this.#members.size + this.#corps.size >= this.#sweepAt) this.#sweep()
  }

  /**
   * Whether a token with these claims is refused: its session ended, or its member was off-boarded
   * (or its corp uninstalled a suite) at or after its issue (epoch ms `iat_ms`). One or two map
   * lookups, a third only while some corp's uninstall is recent: this runs on every request. The
   * member's key is built only while some off-boarding is recent, rather than kept with every
   * cached token.
   */
  refuses (claims: Pick<AccessClaims, 'sid' | 'corpid' | 'userid' | 'iat_ms'>): boolean {
    const now = this.#now()
    const until = this.#sessions.get(claims.sid)
    // Up to `until` itself: fast-jwt still accepts a token at the millisecond of its exp, which
    // for a token issued at the revocation is `until`.
    if (until !== undefined && until >= now) return true
    if (this.#corps.size !== 0 && crosses(this.#corps.get(claims.corpid), claims.iat_ms, now)) return true
    if (this.#members.size === 0) return false
    return crosses(this.#members.get(memberKey(claims.corpid, claims.userid)), claims.iat_ms, now)
  }

  #sweep (): void {
    const now = this.#now()
    for (const [sid, until] of this.#sessions) {
      if (until < now) this.#sessions.delete(sid)
    }
    for (const lines of [this.#members, this.#corps]) {
      for (const [key, { until }] of lines) {
        if (until < now) lines.delete(key)
      }
    }
    this.#sweepAt = Math.max(1024, (this.#sessions.size + this.#members.size + this.#corps.size) * 2)
  }
}

interface Line { notBefore: number, until: number }

/** A later revocation moves the line forward; replays of older ones never move it back. */
function moveLine (lines: Map<string, Line>, key: string, revocation: Line): void {
  const known = lines.get(key)
  if (known === undefined || revocation.notBefore >= known.notBefore) {
    lines.set(key, { notBefore: revocation.notBefore, until: Math.max(revocation.until, known?.until ?? 0) })
  }
}

/** Whether a token issued at `issuedAt` (epoch ms) is on the refused side of a line still in force. */
function crosses (line: Line | undefined, issuedAt: number, now: number): boolean {
  return line !== undefined && line.until >= now && issuedAt <= line.notBefore
}
