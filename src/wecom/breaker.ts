/**
 * Fail fast while WeCom's origin is down, not while it is degraded. Transport failures (timeouts,
 * resets, refused connections, non-200 or unparsable answers; never an errcode, which proves WeCom
 * answered) are counted against every call over a rolling `window`: when at least `failures` calls
 * failed in it and they are at least `ratio` of its calls, the breaker opens for `coolDown` ms and
 * calls are refused at once. Then one call goes through as a probe; its outcome closes the breaker
 * or opens it for another cool-down.
 *
 * A ratio rather than failures in a row: at 32 logins in flight a WeCom that drops one call in
 * twenty still produces runs of failures (hung calls end together at their deadlines), and a
 * count in a row would turn that partial outage into a whole one; a dead WeCom fails every call
 * and opens it as fast as before.
 *
 * A small state machine rather than opossum: opossum wraps the call with a timeout of its own
 * (the request deadline already is one) and says nothing of how long is left before its probe;
 * here the time left is the Retry-After.
 */
export interface BreakerOptions {
  /** Failed calls within the window, at the least, before the breaker may open. */
  failures: number
  /** The share of the window's calls that failed, from 0 to 1, at which it opens. */
  ratio: number
  /** Milliseconds of calls the ratio is taken over. */
  window: number
  /** Milliseconds the breaker stays open before one probe call is let through. */
  coolDown: number
}

export type BreakerState = 'closed' | 'open' | 'half-open'

/** While a probe is out, others are told to come back this soon (ms). */
const PROBE_WAIT = 1000
/** The window is kept as this many buckets, each dropped whole as it ages out. */
const BUCKETS = 10

interface Bucket { start: number, calls: number, failures: number }

export class Breaker {
  readonly #options: BreakerOptions
  readonly #onChange: (state: BreakerState) => void
  readonly #now: () => number
  readonly #bucketSpan: number
  readonly #buckets: Bucket[] = []
  #state: BreakerState = 'closed'
  #openUntil = 0

  constructor (options: BreakerOptions, onChange: (state: BreakerState) => void, now: () => number = Date.now) {
    this.#options = options
    this.#onChange = onChange
    this.#now = now
    this.#bucketSpan = Math.max(1, Math.ceil(options.window / BUCKETS))
  }

  get state (): BreakerState {
    return this.#state
  }

  /**
   * 0 when a call may go now (the caller then reports `success` or `failure`); otherwise the
   * milliseconds after which to try again.
   */
  admit (): number {
    if (this.#state === 'closed') return 0
    if (this.#state === 'half-open') return PROBE_WAIT
    const left = this.#openUntil - this.#now()
    if (left > 0) return left
    this.#set('half-open')
    return 0
  }

  /**
   * Milliseconds before a call would be let through, without moving the breaker: the cool-down
   * left while open, the probe's wait while one is out, 0 when a call may go (or probe).
   */
  waitFor (): number {
    return this.#state === 'half-open' ? PROBE_WAIT : this.openFor()
  }

  /** Milliseconds the breaker stays open, without moving it: 0 when a call may be tried. */
  openFor (): number {
    return this.#state === 'open' ? Math.max(0, this.#openUntil - this.#now()) : 0
  }

  success (): void {
    this.#count(false)
    if (this.#state !== 'closed') {
      this.#buckets.length = 0
      this.#set('closed')
    }
  }

  failure (): void {
    this.#count(true)
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#tripped())) {
      this.#openUntil = this.#now() + this.#options.coolDown
      this.#set('open')
    }
  }

  #count (failed: boolean): void {
    const now = this.#now()
    const start = now - (now % this.#bucketSpan)
    let last = this.#buckets.at(-1)
    if (last?.start !== start) {
      last = { start, calls: 0, failures: 0 }
      this.#buckets.push(last)
    }
    last.calls++
    if (failed) last.failures++
    const oldest = now - this.#options.window
    while (this.#buckets.length > 0 && this.#buckets[0].start + this.#bucketSpan <= oldest) this.#buckets.shift()
  }

  #tripped (): boolean {
    let calls = 0
    let failures = 0
    for (const bucket of this.#buckets) {
      calls += bucket.calls
      failures += bucket.failures
    }
    return failures >= this.#options.failures && failures >= this.#options.ratio * calls
  }

  #set (state: BreakerState): void {
    this.#state = state
    this.#onChange(state)
  }
}
