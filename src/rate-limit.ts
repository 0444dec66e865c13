import type { RateLimitPluginOptions } from '@fastify/rate-limit'
import LocalStoreModule from '@fastify/rate-limit/store/LocalStore.js'
import { rateLimited } from './errors.js'
import type { HeaderSwitches } from './options.js'
import type { RateCounter } from './stores/store.js'

type StoreCallback = (error: Error | null, result?: { current: number, ttl: number }) => void
interface LimitStore {
  incr (key: string, callback: StoreCallback, timeWindow: number, max: number): void
  child (routeOptions: { routeInfo: { method: string, url: string } }): LimitStore
}
type LocalStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => LimitStore

// @fastify/rate-limit's own in-process store: counts here while the shared counter is down.
// Imported by path (the package has no exports map): the same in the ESM and the CommonJS build.
const LocalStore = LocalStoreModule as LocalStoreCtor

/**
 * The options for @fastify/rate-limit on /login and /refresh: the caller's options over our
 * defaults, answers from the errors table (429 WECOM_RATE_LIMITED, with the Retry-After and
 * x-ratelimit-* headers @fastify/rate-limit sends), and, when the session store shares a counter (Redis),
 * one count for every instance.
 */
export function rateLimitOptions (options: Record<string, unknown> & { addHeaders?: HeaderSwitches }, counter: RateCounter | undefined): RateLimitPluginOptions {
  // The library sends Retry-After itself unless `addHeaders` turns it off, as read here: the
  // error carries it only then, so that a host's error handler, which sets the error's headers,
  // answers the same (and Fastify's default handler too).
  const { addHeaders = {} } = options
  const retryAfter = !('retry-after' in addHeaders) || Boolean(addHeaders['retry-after'])
  return {
    errorResponseBuilder: (_request, context) => rateLimited(retryAfter ? context.ttl : undefined),
    ...options,
    // Per route, set on /login and /refresh only: the plugin's other routes are not limited.
    global: false,
    store: limitStore(counter)
  }
}

/**
 * A @fastify/rate-limit store: on the shared counter when there is one, and on the library's own
 * in-process LocalStore without one or while it is down. LocalStore hands every caller the same
 * mutable entry and the library reads it after an await, so requests arriving in one tick all
 * read the last count (a burst of 30 under a limit of 20 was refused whole): the count is copied
 * the moment it is made.
 */
function limitStore (counter: RateCounter | undefined): RateLimitPluginOptions['store'] {
  class WecomLimitStore implements LimitStore {
    readonly #prefix: string
    readonly #local = new LocalStore(false, false)

    constructor (_options: unknown, prefix = '') {
      this.#prefix = prefix
    }

    incr (key: string, callback: StoreCallback, timeWindow: number, max: number): void {
      const local = (): void => this.#local.incr(key, (error, result) =>
        callback(error, result === undefined ? undefined : { current: result.current, ttl: result.ttl }), timeWindow, max)
      if (counter === undefined) {
        local()
        return
      }
      counter.incr(this.#prefix + key, timeWindow).then((result) => callback(null, result), local)
    }

    child (routeOptions: { routeInfo: { method: string, url: string } }): LimitStore {
      return new WecomLimitStore(undefined, `${routeOptions.routeInfo.method}${routeOptions.routeInfo.url}:`)
    }
  }
  return WecomLimitStore as unknown as RateLimitPluginOptions['store']
}
