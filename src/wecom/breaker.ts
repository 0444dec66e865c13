/**
 * Fail fast while WeCom's origin is down. After `failures` transport failures in a row (timeouts,
 * resets, refused connections, non-200 or unparsable answers; never an errcode, which proves WeCom
 * answered) the breaker opens for `coolDown` ms: calls are refused at once. Then one call goes
 * through as a probe; its outcome closes the breaker or opens it for another cool-down.
 *
 * "In a row" is judged by what WeCom did while the call was out, not by the order calls ended: a
 * failure counts only if no call succeeded since it was sent. Concurrent calls that hung end
 * together at their deadlines, one after another; counted by the order they ended, the few
 * hangs of a WeCom answering 95% of calls would open the breaker and turn a partial outage into
 * a whole one (seen in the fault soak).
 *
 * A small state machine rather than opossum: opossum trips on an error percentage over rolling
 * buckets with timers of its own per breaker, wraps the call (with its own timeout, which the
 * request deadline already is), and says nothing of how long is left before its probe; here the
 * consecutive-failure rule is the whole policy and the time left is the Retry-After.
 */
export interface BreakerOptions {
  /** Transport failures in a row that open the breaker. */
  failures: number
  /** Milliseconds the breaker stays open before one probe call is let through. */
  coolDown: number
}

export type BreakerState = 'closed' | 'open' | 'half-open'

/** While a probe is out, others are told to come back this soon (ms). */
const PROBE_WAIT = 1000

export class Breaker {
  readonly #options: BreakerOptions
  readonly #onChange: (state: BreakerState) => void
  readonly #now: () => number
  #state: BreakerState = 'closed'
  #failures = 0
  #openUntil = 0
  #succeededAt = -Infinity

  constructor (options: BreakerOptions, onChange: (state: BreakerState) => void, now: () => number = Date.now) {
    this.#options = options
    this.#onChange = onChange
    this.#now = now
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

  success (): void {
    this.#failures = 0
    this.#succeededAt = this.#now()
    if (this.#state !== 'closed') this.#set('closed')
  }

  /** @param sentAt epoch ms at which the failed call was sent. */
  failure (sentAt: number): void {
    if (this.#state === 'closed' && this.#succeededAt > sentAt) return
    this.#failures++
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#failures >= this.#options.failures)) {
      this.#openUntil = this.#now() + this.#options.coolDown
      this.#set('open')
    }
  }

  #set (state: BreakerState): void {
    this.#state = state
    this.#onChange(state)
  }
}
