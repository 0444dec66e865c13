import type { RateCounter } from '../store.js'
import type { Run } from './connection.js'
import { redisKeys } from './keys.js'
import { COUNT } from './scripts.js'

/** Requests counted in fixed windows in Redis, one count for every instance: see RateCounter. */
export class RedisRateCounter implements RateCounter {
  readonly #run: Run
  readonly #prefix: string

  /** `run`: the session store's commands, so that a Redis outage fails as StoreDownError. */
  constructor (run: Run, keyPrefix: string) {
    this.#run = run
    this.#prefix = keyPrefix
  }

  async incr (key: string, window: number, by = 1): Promise<{ current: number, ttl: number }> {
    const [current, ttl] = await this.#run((client) => COUNT.run(client, [redisKeys.rate(this.#prefix, key)], [window, by])) as [number, number]
    return { current, ttl }
  }
}
