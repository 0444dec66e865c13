import type { SuiteTicket, SuiteTicketStore } from '../store.js'
import { px, type Run } from './connection.js'
import { redisKeys } from './keys.js'
import { SAVE_NEWEST } from './scripts.js'

/** Each suite's newest suite_ticket under one key, `<TimeStamp>.<ticket>`, shared by every instance. */
export class RedisSuiteTickets implements SuiteTicketStore {
  readonly #run: Run
  readonly #prefix: string

  constructor (run: Run, prefix: string) {
    this.#run = run
    this.#prefix = prefix
  }

  async save (suiteId: string, { ticket, timestamp }: SuiteTicket, ttl: number): Promise<boolean> {
    const kept = await this.#run((client) => SAVE_NEWEST.run(client, [redisKeys.suiteTicket(this.#prefix, suiteId)], [timestamp, `${timestamp}.${ticket}`, px(ttl)]))
    return kept === 1
  }

  async get (suiteId: string): Promise<SuiteTicket | null> {
    const kept = await this.#run((client) => client.get(redisKeys.suiteTicket(this.#prefix, suiteId)))
    const dot = kept === null ? -1 : kept.indexOf('.')
    const timestamp = Number(kept?.slice(0, dot))
    // Anything else under the key is no ticket of ours (as parsed() refuses in the installs' store).
    if (kept === null || dot < 1 || !Number.isFinite(timestamp)) return null
    return { timestamp, ticket: kept.slice(dot + 1) }
  }
}
