import { CallbackForbiddenError, CallbackInvalidError } from '../errors.js'
import { addressedEvent, isTimestamp, openMessage, verifyUrl, type CallbackCorp, type CallbackQuery, type WecomEvent } from './callback.js'

/**
 * A suite's callback ("指令回调" and "数据回调", doc path/90600): the crypto of a corp's callback,
 * with the suite's Token and EncodingAESKey, but another receiver id inside the ciphertext for
 * each kind of message (doc path/95373): the provider's CorpID for the URL check, the SuiteId for
 * a push, an authorized corp's corpid for its events. Parses and decides; knows nothing of Fastify.
 */

/** A suite's callback settings. */
export interface CallbackSuite { suiteId: string, token: string, encodingAESKey: string }

/**
 * A push, its fields under WeCom's names as the text WeCom wrote: `SuiteId`, `InfoType`
 * (`suite_ticket`, `create_auth`, `change_auth`, `cancel_auth`, `reset_permanent_code`, …),
 * `TimeStamp` (epoch seconds), and the type's own (`SuiteTicket`, `AuthCode`, `AuthCorpId`, …).
 */
export type SuitePush = WecomEvent & { SuiteId: string, InfoType: string, TimeStamp: string }

/**
 * What a POST to a suite's callback carries: a push (receiver the SuiteId), or a data callback's
 * event of a corp that installed the suite (receiver that corp's corpid, doc path/95373), whose
 * install the caller checks before acting.
 */
export type SuiteDelivery =
  | { kind: 'push', suite: CallbackSuite, push: SuitePush }
  | { kind: 'event', suite: CallbackSuite, corpId: string, event: WecomEvent }

/** WeCom's corpids, encrypted ones included: short ASCII, case kept. */
const CORP_ID = /^[\x21-\x7e]{1,128}$/

/**
 * The suites' callback as one receiver: its receiver lists built once. `verifyUrl` (GET): the URL
 * check, its `echostr` encrypted for the provider's CorpID. `open` (POST): one delivery, opened
 * with a suite's key for its SuiteId or an authorized corp's corpid.
 */
export function createSuiteCallback (suites: readonly CallbackSuite[], providerCorpId: string) {
  const checks: CallbackCorp[] = suites.map(({ token, encodingAESKey }) => ({ corpId: providerCorpId, token, encodingAESKey }))
  const receivers: CallbackCorp[] = suites.map(({ suiteId, token, encodingAESKey }) => ({ corpId: suiteId, token, encodingAESKey }))
  const bySuiteId = new Map(suites.map((suite) => [suite.suiteId, suite]))
  // The provider's own CorpID is the URL check's receiver only; another suite's id is no corp's.
  const accepts = (receiver: CallbackCorp, id: string): boolean =>
    id === receiver.corpId || (id !== providerCorpId && CORP_ID.test(id) && !bySuiteId.has(id))

  return {
    verifyUrl: (query: CallbackQuery, now: number): string => verifyUrl(checks, query, now),

    open (query: CallbackQuery, body: unknown, now: number): SuiteDelivery {
      const { receiver, id, message } = openMessage(receivers, query, body, now, accepts)
      const suite = bySuiteId.get(receiver.corpId)!
      if (id !== suite.suiteId) {
        // Checked as a corp's own callback's event.
        return { kind: 'event', suite, corpId: id, event: addressedEvent(message, id) }
      }
      // The receiver id inside the ciphertext is the suite; the SuiteId inside must agree with it.
      if (message.SuiteId !== suite.suiteId) throw new CallbackForbiddenError('the push is not for that suite')
      if (typeof message.InfoType !== 'string' || message.InfoType === '') throw new CallbackInvalidError('the push has no InfoType')
      if (!isTimestamp(message.TimeStamp)) throw new CallbackInvalidError('the push has no TimeStamp')
      return { kind: 'push', suite, push: message as SuitePush }
    }
  }
}

export type SuiteCallback = ReturnType<typeof createSuiteCallback>
