import { randomUUID } from 'node:crypto'
import type { DeliveryClaim } from '../store.js'
import { px, type Run } from './connection.js'
import { redisKeys } from './keys.js'
import { CLAIM_DELIVERY, RELEASE, RENEW_DELIVERY } from './scripts.js'

/** What a delivery done is kept as: never a claim's id, which is a UUID. */
const DONE = 'done'

/**
 * The memory of WeCom's callback deliveries, one key each, across instances: a claim's id while
 * one instance acts on it, 'done' once it did. See SessionStore.claimDelivery.
 */
export class RedisDeliveries {
  readonly #run: Run
  readonly #prefix: string

  /** `run`: the session store's commands, so that a Redis outage fails as StoreDownError. */
  constructor (run: Run, keyPrefix: string) {
    this.#run = run
    this.#prefix = keyPrefix
  }

  async claim (key: string, lease: number): Promise<DeliveryClaim> {
    const id = randomUUID()
    const state = await this.#run((client) => CLAIM_DELIVERY.run(client, [redisKeys.delivery(this.#prefix, key)], [id, px(lease)]))
    return state === 'new' ? { state, id } : { state: state === DONE ? 'done' : 'busy' }
  }

  async renew (key: string, id: string, lease: number): Promise<boolean> {
    return await this.#run((client) => RENEW_DELIVERY.run(client, [redisKeys.delivery(this.#prefix, key)], [id, px(lease)])) === 1
  }

  async settle (key: string, id: string, done: boolean, ttl: number): Promise<void> {
    const delivery = redisKeys.delivery(this.#prefix, key)
    await (done
      ? this.#run((client) => client.set(delivery, DONE, 'PX', px(ttl)))
      : this.#run((client) => RELEASE.run(client, [delivery], [id])))
  }
}
