/**
 * The outbound budget: how many calls may be made per key (a corp and endpoint, or a client's
 * share of it) in a window: a minute for api.budget, an hour for WeCom's hourly limits on the
 * JS-SDK tickets. WeCom's own limits are 10,000 a minute and 150,000 an hour per corp and API
 * (doc path/90454); spending the corp's quota locks every member out with 45009, so the budget
 * stops short of it and the caller answers 503 itself.
 *
 * Alone, a process counts in a token bucket refilled continuously (bursts up to a window's worth).
 * With a shared counter (Redis), every instance counts against one fixed window, so that
 * four instances spend what one would: each takes calls from the counter in leases of a few, so
 * that most calls cost no round trip, and a lease never goes past the window's limit nor outlives
 * its window. While the counter is down the process counts alone.
 */

/** A count shared by every instance (SessionStore.rateCounter). */
export interface SharedCounter {
  /** Adds `by` to `key` in its window of `window` ms; answers the count and the ms left of the window. */
  incr (key: string, window: number, by?: number): Promise<{ current: number, ttl: number }>
}

const MINUTE = 60_000

interface Bucket { tokens: number, at: number }
interface Lease {
  /** Calls left of the lease; -1 once the window's limit is reached. */
  left: number
  /** Epoch ms the lease (and its window) ends. */
  until: number
  pending?: Promise<void>
  /** The counter failed: count in this process until `until`. */
  local?: true
}

/** After the shared counter fails, how long this process counts alone before asking it again. */
const COUNTER_RETRY = 5000

export class Budget {
  readonly #limit: number
  readonly #window: number
  readonly #perMs: number
  readonly #lease: number
  readonly #counter: SharedCounter | undefined
  readonly #now: () => number
  readonly #buckets = new Map<string, Bucket>()
  readonly #leases = new Map<string, Lease>()
  #sweptAt = 0

  /**
   * @param limit calls per key in a window
   * @param counter the shared count, when instances share one
   * @param window the window's length in ms (a minute unless said)
   */
  constructor (limit: number, counter?: SharedCounter, now: () => number = Date.now, window = MINUTE) {
    this.#limit = limit
    this.#window = window
    this.#perMs = limit / window
    // A hundredth of the window per round trip: at most that many calls a window are left unspent
    // by each instance, and the counter is asked once per that many calls.
    this.#lease = Math.max(1, Math.floor(limit / 100))
    this.#counter = counter
    this.#now = now
  }

  /** 0 when `key` has a call left without taking it; otherwise the milliseconds until it has one. */
  wait (key: string): number {
    const lease = this.#leases.get(key)
    if (lease !== undefined && lease.until > this.#now()) {
      if (lease.local === true) return this.#bucketWait(key)
      if (lease.left > 0 || lease.pending !== undefined) return 0
      if (lease.left < 0) return lease.until - this.#now()
      return 0
    }
    return this.#counter === undefined ? this.#bucketWait(key) : 0
  }

  /** Takes one call from `key`: 0 when taken, else the milliseconds until one may be. */
  async take (key: string): Promise<number> {
    this.#sweep()
    if (this.#counter === undefined) return this.#takeLocal(key)
    for (;;) {
      const lease = this.#leases.get(key)
      const now = this.#now()
      if (lease === undefined || lease.until <= now) {
        await this.#renew(key, undefined)
      } else if (lease.local === true) {
        return this.#takeLocal(key)
      } else if (lease.pending !== undefined) {
        await lease.pending
      } else if (lease.left > 0) {
        lease.left--
        return 0
      } else if (lease.left < 0) {
        return lease.until - now
      } else {
        await this.#renew(key, lease)
      }
    }
  }

  #renew (key: string, lease: Lease | undefined): Promise<void> {
    const pending = this.#counter!.incr(`budget ${key}`, this.#window, this.#lease).then(({ current, ttl }) => {
      const granted = Math.max(0, Math.min(this.#lease, this.#limit - (current - this.#lease)))
      // Spent: -1 marks the window closed to this key until it ends, with no round trip before.
      this.#leases.set(key, { left: granted === 0 ? -1 : granted, until: this.#now() + Math.max(1, ttl) })
    }, () => {
      this.#leases.set(key, { left: 0, until: this.#now() + COUNTER_RETRY, local: true })
    })
    this.#leases.set(key, { left: 0, until: lease?.until ?? this.#now() + this.#window, pending })
    return pending
  }

  /**
   * Once a minute, forgets the keys that hold nothing: a full bucket, a lease whose window ended.
   * Keys per client come and go; without this each would stay for the life of the process.
   */
  #sweep (): void {
    const now = this.#now()
    if (now - this.#sweptAt < MINUTE) return
    this.#sweptAt = now
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#perMs >= this.#limit) this.#buckets.delete(key)
    }
    for (const [key, lease] of this.#leases) {
      if (lease.until <= now && lease.pending === undefined) this.#leases.delete(key)
    }
  }

  /** Keys held now, for tests of the sweep. */
  get size (): number {
    return this.#buckets.size + this.#leases.size
  }

  #bucketWait (key: string): number {
    const bucket = this.#bucket(key)
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / this.#perMs)
  }

  #takeLocal (key: string): number {
    const wait = this.#bucketWait(key)
    if (wait === 0) this.#bucket(key).tokens -= 1
    return wait
  }

  #bucket (key: string): Bucket {
    const now = this.#now()
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.#limit, at: now }
      this.#buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(this.#limit, bucket.tokens + (now - bucket.at) * this.#perMs)
    bucket.at = now
    return bucket
  }
}
