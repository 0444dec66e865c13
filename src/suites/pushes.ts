import { CallbackForbiddenError, CallbackInvalidError, CallbackRetryError } from '../errors.js'
import { TIMESTAMP_WINDOW } from '../events/callback.js'
import type { CallbackSuite, SuitePush } from '../events/suite-callback.js'
import type { EventLogger } from '../events/offboarding.js'
import type { SuiteTicketStore } from '../stores/store.js'

/** Milliseconds a suite_ticket is good for: WeCom pushes one every 10 minutes, each valid 30 (doc path/90628). */
export const SUITE_TICKET_TTL = 30 * 60 * 1000
/** WeCom's suite_ticket is at most 512 bytes. */
const MAX_TICKET = 512

/** The InfoTypes WeCom pushes to a suite (doc path/90600): named in a refusal; any other is not. */
const KNOWN = new Set(['create_auth', 'change_auth', 'cancel_auth', 'reset_permanent_code', 'change_contact', 'change_external_contact', 'change_school_contact', 'change_app_admin'])

export interface SuitePushOptions {
  tickets: SuiteTicketStore
  /** Told, with the store's errors, what each push did; never a ticket. */
  log: EventLogger
  now?: () => number
}

/**
 * What a verified push to a suite's callback does: a `suite_ticket` is kept as the suite's newest
 * (by its TimeStamp, so that a late, repeated or reordered push never replaces a newer one), until
 * 30 minutes after its TimeStamp, for every instance that shares the store (Redis). A push of another InfoType is not acknowledged (503 WECOM_CALLBACK_RETRY, and
 * WeCom resends it) rather than dropped: this version acts on suite_ticket only.
 */
export function createSuitePushes ({ tickets, log, now = Date.now }: SuitePushOptions) {
  return {
    async handle (suite: CallbackSuite, push: SuitePush): Promise<void> {
      if (push.InfoType !== 'suite_ticket') {
        // What was decrypted is not written back: a known type is named, another is not.
        throw new CallbackRetryError(`this version does not act on ${KNOWN.has(push.InfoType) ? push.InfoType : 'this InfoType\'s'} pushes`)
      }
      const ticket = push.SuiteTicket
      if (typeof ticket !== 'string' || ticket === '' || Buffer.byteLength(ticket) > MAX_TICKET) {
        throw new CallbackInvalidError('the push has no SuiteTicket')
      }
      const timestamp = Number(push.TimeStamp)
      // A ticket dated ahead would outrank every genuine one for as long as it is kept.
      if (timestamp * 1000 > now() + TIMESTAMP_WINDOW * 1000) throw new CallbackForbiddenError('the push is dated ahead of this server\'s clock')
      // Valid 30 minutes from its push, not from its arrival: a late one lives only what it has left.
      const left = timestamp * 1000 + SUITE_TICKET_TTL - now()
      const kept = left > 0 && await tickets.save(suite.suiteId, { ticket, timestamp }, left)
      log.info({ suiteId: suite.suiteId, timestamp, kept },
        kept
          ? 'wecom: suite_ticket kept for the suite'
          : left > 0 ? 'wecom: suite_ticket older than the one kept; ignored' : 'wecom: suite_ticket past its 30 minutes; ignored')
    }
  }
}

export type SuitePushes = ReturnType<typeof createSuitePushes>
