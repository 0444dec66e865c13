/**
 * WeCom's timed suite_ticket pushes (doc path/90628: every ten minutes to each suite's command
 * callback), and the bad days of that delivery that providers' SDKs met (WxJava #1924, #1991):
 * pushes lost, late, sent twice or overtaken by the next one.
 */
import { randomBytes } from 'node:crypto'
import { SimulatorNotFoundError } from './errors.js'
import type { SuitePushes } from './suite-pushes.js'
import type { SimulatorClock, Timers } from './time.js'

/**
 * What becomes of one timed push: `on-time`; `lost` (never sent); `late` (sent half an interval
 * after its TimeStamp, still the newest when it arrives); `twice` (sent, then sent again alike);
 * `out-of-order` (held back and sent just after the next push, so an older TimeStamp arrives last).
 */
export type SuiteTicketFate = 'on-time' | 'lost' | 'late' | 'twice' | 'out-of-order'

export const SUITE_TICKET_FATES: readonly SuiteTicketFate[] = ['on-time', 'lost', 'late', 'twice', 'out-of-order']

interface Held { ticket: string, timestamp: number }

export class SuiteTicketSchedule {
  /** The fates of each suite's next timed pushes, in order; on time once they run out. */
  readonly #plans = new Map<string, SuiteTicketFate[]>()
  /** An out-of-order push of each suite, waiting for the next one to go first. */
  readonly #held = new Map<string, Held>()
  readonly #started = new Set<string>()
  /** The TimeStamp of each suite's last timed push. */
  readonly #stamps = new Map<string, number>()

  /** `everyMs` 0: no timed pushes (a test pushes them itself). */
  constructor (
    private readonly pushes: SuitePushes,
    private readonly clock: SimulatorClock,
    private readonly timers: Timers,
    private readonly everyMs: number
  ) {}

  /** Starts the suites' timed pushes once their callback URL passed its check: the first at once. */
  start (suiteIds: readonly string[]): void {
    if (this.everyMs === 0) return
    for (const suiteId of suiteIds) {
      if (this.#started.has(suiteId)) continue
      this.#started.add(suiteId)
      this.#tick(suiteId)
    }
  }

  /** The fates of the suite's next timed pushes, after any already planned. */
  plan (suiteId: string, fates: readonly SuiteTicketFate[]): void {
    for (const fate of fates) {
      if (!SUITE_TICKET_FATES.includes(fate)) throw new Error(`WeCom simulator: no suite_ticket fate ${JSON.stringify(fate)}; one of ${SUITE_TICKET_FATES.join(', ')}`)
    }
    if (this.pushes.suite(suiteId) === undefined) throw new SimulatorNotFoundError(`unknown suite ${JSON.stringify(suiteId)}`)
    this.#plans.set(suiteId, [...(this.#plans.get(suiteId) ?? []), ...fates])
  }

  #tick (suiteId: string): void {
    this.timers.after(this.everyMs, () => this.#tick(suiteId))
    const fate = this.#plans.get(suiteId)?.shift() ?? 'on-time'
    // Each dated after the one before, even when pushes come faster than a second apart (tests).
    const timestamp = Math.max(Math.floor(this.clock.wall() / 1000), (this.#stamps.get(suiteId) ?? 0) + 1)
    this.#stamps.set(suiteId, timestamp)
    const push = { ticket: randomBytes(24).toString('base64url'), timestamp }
    const overtaken = this.#held.get(suiteId)
    this.#held.delete(suiteId)
    const send = async (held: Held): Promise<void> => { await this.pushes.pushTicket(suiteId, held) }
    const sent = async (): Promise<void> => {
      if (fate === 'on-time' || fate === 'twice') await send(push)
      if (fate === 'twice') await send(push)
      if (fate === 'late') this.timers.after(this.everyMs / 2, () => { send(push).catch(() => {}) })
      if (fate === 'out-of-order') this.#held.set(suiteId, push)
      if (overtaken !== undefined) await send(overtaken)
    }
    // A push the callback did not take is WeCom's loss, as a lost one: the next comes in time.
    sent().catch(() => {})
  }
}
