/**
 * What WeCom refused, remembered for a window, so that a reset secret or a rate limit costs one
 * call per window rather than one per login (WeCom blocks the server's IP for an hour after about
 * 2,000 failed gettoken calls in an hour, doc 90454). Keys name the scope: an app (corpId + secret)
 * and endpoint for refusals and back-off, a corp and endpoint for rate limits.
 */
export type RefusalKind =
  /** A configuration error: calls in the window answer 502 without reaching WeCom. */
  | 'refused'
  /** 45009 / 45033: calls in the window answer 503 with Retry-After. */
  | 'paused'
  /** gettoken could not be had (transport failure, -1): the next try waits, doubling. */
  | 'backoff'

export interface Refusal<E> {
  kind: RefusalKind
  /** Epoch ms at which the window ends. */
  until: number
  /** What WeCom (or the transport) said, answered again in the window. */
  error: E
}

/** Back-off of gettoken after a transport failure: 1 s, doubling, at most a minute. */
const BACKOFF_FIRST = 1000
const BACKOFF_MAX = 60_000

export class Refusals<E> {
  readonly #entries = new Map<string, Refusal<E>>()
  readonly #backoff = new Map<string, number>()
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  /** The refusal in force for `key`, if any. */
  check (key: string): Refusal<E> | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until > this.#now()) return entry
    this.#entries.delete(key)
    return undefined
  }

  /** Remembers a refusal for `window` ms; true when no window was open (the caller logs then). */
  remember (key: string, kind: RefusalKind, error: E, window: number): boolean {
    const fresh = this.check(key) === undefined
    this.#entries.set(key, { kind, until: this.#now() + window, error })
    return fresh
  }

  /** Starts (or doubles) the back-off of `key`; returns its length in ms. */
  backOff (key: string, error: E): number {
    const delay = this.#backoff.get(key) ?? BACKOFF_FIRST
    this.#backoff.set(key, Math.min(delay * 2, BACKOFF_MAX))
    this.remember(key, 'backoff', error, delay)
    return delay
  }

  /** A call under `key` went through: its back-off starts over from the first step. */
  succeeded (key: string): void {
    this.#backoff.delete(key)
  }
}
