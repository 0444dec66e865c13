/**
 * The outbound budget: how many calls this process may make per corp and endpoint, as a token
 * bucket refilled continuously at `perMinute` a minute (bursts up to a minute's worth). WeCom's
 * own limits are 10,000 a minute and 150,000 an hour per corp and API (doc 90454); spending the
 * corp's quota locks every member out with 45009, so the budget stops short of it and answers
 * 503 itself.
 */
export class Budget {
  readonly #perMs: number
  readonly #capacity: number
  readonly #buckets = new Map<string, { tokens: number, at: number, spent: boolean }>()
  readonly #now: () => number

  constructor (perMinute: number, now: () => number = Date.now) {
    this.#capacity = perMinute
    this.#perMs = perMinute / 60_000
    this.#now = now
  }

  /**
   * 0 when `key` has a call left; otherwise the milliseconds until it has one. `onChange` hears of
   * a bucket running dry or coming back, once per change.
   */
  wait (key: string, onChange: (spent: boolean) => void): number {
    const now = this.#now()
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.#capacity, at: now, spent: false }
      this.#buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#perMs)
    bucket.at = now
    const spent = bucket.tokens < 1
    if (spent !== bucket.spent) {
      bucket.spent = spent
      onChange(spent)
    }
    return spent ? Math.ceil((1 - bucket.tokens) / this.#perMs) : 0
  }

  /** Takes one call from `key`, after `wait` said there is one. */
  take (key: string): void {
    const bucket = this.#buckets.get(key)
    if (bucket !== undefined) bucket.tokens -= 1
  }
}
