import { CallbackInvalidError, CallbackRetryError } from '../errors.js'
import type { CallbackSuite, SuitePush } from '../events/suite-callback.js'
import type { EventLogger } from '../events/offboarding.js'
import type { SuiteTicketStore } from '../stores/store.js'

/** Milliseconds a suite_ticket is good for: WeCom pushes one every 10 minutes, each valid 30 (doc path/90628). */
export const SUITE_TICKET_TTL = 30 * 60 * 1000
/** WeCom's suite_ticket is at most 512 bytes. */
const MAX_TICKET = 512

export interface SuitePushOptions {
  tickets: SuiteTicketStore
  /** Told, with the store's errors, what each push did; never a ticket. */
  log: EventLogger
}

/**
 * What a verified push to a suite's callback does: a `suite_ticket` is kept as the suite's newest
 * (by its TimeStamp, so that a late, repeated or reordered push never replaces a newer one) for
 * every instance. A push of another InfoType is not acknowledged (503 WECOM_CALLBACK_RETRY, and
 * WeCom resends it) rather than dropped: this version acts on suite_ticket only.
 */
export function createSuitePushes ({ tickets, log }: SuitePushOptions) {
  return {
    async handle (suite: CallbackSuite, push: SuitePush): Promise<void> {
      if (push.InfoType !== 'suite_ticket') throw new CallbackRetryError(`this version does not act on ${push.InfoType} pushes`)
      const ticket = push.SuiteTicket
      if (typeof ticket !== 'string' || ticket === '' || Buffer.byteLength(ticket) > MAX_TICKET) {
        throw new CallbackInvalidError('the push has no SuiteTicket')
      }
      const kept = await tickets.save(suite.suiteId, { ticket, timestamp: Number(push.TimeStamp) }, SUITE_TICKET_TTL)
      log.info({ suiteId: suite.suiteId, timestamp: Number(push.TimeStamp), kept },
        kept ? 'wecom: suite_ticket kept for the suite' : 'wecom: suite_ticket older than the one kept; ignored')
    }
  }
}

export type SuitePushes = ReturnType<typeof createSuitePushes>
