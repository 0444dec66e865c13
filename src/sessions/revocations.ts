import type { Revocation } from '../stores/store.js'

/**
 * The revoked sessions this process knows of, checked on every authenticated request without a
 * round trip. An entry lives only as long as an access token of its session could: after that the
 * token is refused as expired anyway, so the set stays as small as the recent revocations.
 */
export class RevokedSessions {
  readonly #until = new Map<string, number>()
  readonly #now: () => number
  #sweepAt = 1024

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  add (revocations: readonly Revocation[]): void {
    for (const { sid, until } of revocations) {
      if (until > (this.#until.get(sid) ?? 0)) this.#until.set(sid, until)
    }
    if (this.#until.size >= this.#sweepAt) this.#sweep()
  }

  has (sid: string): boolean {
    const until = this.#until.get(sid)
    return until !== undefined && until > this.#now()
  }

  #sweep (): void {
    const now = this.#now()
    for (const [sid, until] of this.#until) {
      if (until <= now) this.#until.delete(sid)
    }
    this.#sweepAt = Math.max(1024, this.#until.size * 2)
  }
}
