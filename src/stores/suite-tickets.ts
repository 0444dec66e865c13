import type { SuiteTicket, SuiteTicketStore } from './store.js'

/** The suite tickets of one process: one per suite of the options, so never many. */
export class MemorySuiteTickets implements SuiteTicketStore {
  readonly #tickets = new Map<string, SuiteTicket & { expiresAt: number }>()
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  async save (suiteId: string, ticket: SuiteTicket, ttl: number): Promise<boolean> {
    const kept = await this.get(suiteId)
    if (kept !== null && kept.timestamp > ticket.timestamp) return false
    this.#tickets.set(suiteId, { ...ticket, expiresAt: this.#now() + ttl })
    return true
  }

  async get (suiteId: string): Promise<SuiteTicket | null> {
    const kept = this.#tickets.get(suiteId)
    if (kept === undefined || kept.expiresAt <= this.#now()) return null
    return { ticket: kept.ticket, timestamp: kept.timestamp }
  }
}
