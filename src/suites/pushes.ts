import { CallbackForbiddenError, CallbackInvalidError, CallbackRetryError } from '../errors.js'
import { TIMESTAMP_WINDOW } from '../events/callback.js'
import type { CallbackSuite, SuitePush } from '../events/suite-callback.js'
import type { FastifyRequest } from 'fastify'
import type { WecomEvent } from '../events/callback.js'
import { actOnce, deliveryKey, type DeliveryClaims, type EventLogger } from '../events/deliveries.js'
import type { SuiteTicketStore } from '../stores/store.js'
import type { Authorizations } from './authorizations.js'

/** Milliseconds a suite_ticket is good for: WeCom pushes one every 10 minutes, each valid 30 (doc path/90628). */
export const SUITE_TICKET_TTL = 30 * 60 * 1000
/** WeCom's suite_ticket is at most 512 bytes. */
const MAX_TICKET = 512

/** The InfoTypes WeCom pushes to a suite (doc path/90600) this version does not act on: named in a refusal; any other is not. */
const KNOWN = new Set(['change_external_contact', 'change_school_contact', 'change_app_admin'])
/** WeCom's AuthCode (single use) and AuthCorpId: short ASCII; anything else is not WeCom's. */
const WECOM_TEXT = /^[\x21-\x7e]{1,512}$/

export interface SuitePushOptions {
  tickets: SuiteTicketStore
  authorizations: Authorizations
  /** The store's claims: an install, a cancel, a change acted on once across instances. */
  claims: Omit<DeliveryClaims, 'log'>
  /** A contact change of an authorized corp (change_contact), as the corps' callback events are handled. */
  contactEvent (corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void>
  /** Told, with the store's errors, what each push did; never a ticket. */
  log: EventLogger
  now?: () => number
}

/**
 * What a verified push to a suite's callback does (doc path/90600 on): a `suite_ticket` is kept as
 * the suite's newest (by its TimeStamp, so that a late, repeated or reordered push never replaces
 * a newer one), until 30 minutes after its TimeStamp, for every instance that shares the store
 * (Redis). `create_auth`, `change_auth`, `cancel_auth` and `reset_permanent_code` act on the corp's
 * install once across instances; `change_contact` is the corp's contact event, off-boarding its
 * members. A push of another InfoType is not acknowledged (503 WECOM_CALLBACK_RETRY, and WeCom
 * resends it) rather than dropped.
 */
export function createSuitePushes ({ tickets, authorizations, claims, contactEvent, log, now = Date.now }: SuitePushOptions) {
  const once = (suite: CallbackSuite, push: SuitePush, corpId: string | undefined, work: () => Promise<void>) =>
    actOnce({ ...claims, log }, deliveryKey(suite.suiteId, push), { suiteId: suite.suiteId, corpId, event: push.InfoType }, work)

  return {
    /** A data callback's event of a corp (receiver its corpid): the corps' off-boarding, for a corp that installed the suite. */
    corpEvent,

    async handle (suite: CallbackSuite, push: SuitePush, request: FastifyRequest): Promise<void> {
      switch (push.InfoType) {
        case 'suite_ticket':
          return await keepTicket(suite, push)
        case 'create_auth':
          return await once(suite, push, undefined, async () => { await authorizations.install(suite.suiteId, field(push, 'AuthCode'), Number(push.TimeStamp)) })
        case 'reset_permanent_code':
          return await once(suite, push, undefined, () => authorizations.reset(suite.suiteId, field(push, 'AuthCode')))
        case 'change_auth':
          return await once(suite, push, field(push, 'AuthCorpId'), () => authorizations.reread(suite.suiteId, field(push, 'AuthCorpId')))
        case 'cancel_auth':
          return await once(suite, push, field(push, 'AuthCorpId'), () => authorizations.cancel(suite.suiteId, field(push, 'AuthCorpId'), Number(push.TimeStamp)))
        case 'change_contact':
          return await contactChange(suite, push, request)
      }
      // What was decrypted is not written back: a known type is named, another is not.
      throw new CallbackRetryError(`this version does not act on ${KNOWN.has(push.InfoType) ? push.InfoType : 'this InfoType\'s'} pushes`)
    }
  }

  /** A contact change pushed for a corp that installed the suite, as its own callback's event reads (doc path/90639). */
  function contactChange (suite: CallbackSuite, push: SuitePush, request: FastifyRequest): Promise<void> {
    const corpId = field(push, 'AuthCorpId')
    return corpEvent(suite, corpId, { ...push, ToUserName: corpId, Event: 'change_contact', CreateTime: push.TimeStamp }, request)
  }

  /** An event of a corp, acted on as the corps' callback's only when the corp installed the suite; else 403 and nothing done. */
  async function corpEvent (suite: CallbackSuite, corpId: string, event: WecomEvent, request: FastifyRequest): Promise<void> {
    if (await authorizations.installed(suite.suiteId, corpId) === null) {
      throw new CallbackForbiddenError('the corp has not installed the suite')
    }
    await contactEvent(corpId, event, request)
  }

  async function keepTicket (suite: CallbackSuite, push: SuitePush): Promise<void> {
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

/** A field the push must have, as WeCom writes it: its absence is a malformed push (400). */
function field (push: SuitePush, name: 'AuthCode' | 'AuthCorpId'): string {
  const value = push[name]
  if (typeof value !== 'string' || !WECOM_TEXT.test(value)) throw new CallbackInvalidError(`the push has no ${name}`)
  return value
}

export type SuitePushes = ReturnType<typeof createSuitePushes>
