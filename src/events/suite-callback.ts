import { CallbackForbiddenError, CallbackInvalidError } from '../errors.js'
import { isTimestamp, openMessage, verifyUrl, type CallbackCorp, type CallbackQuery, type WecomEvent } from './callback.js'

/**
 * A suite's command callback ("指令回调", doc path/90600): the crypto of a corp's callback, with the
 * suite's Token and EncodingAESKey, but another receiver id inside the ciphertext for each kind of
 * message (doc path/95373): the provider's CorpID for the URL check, the SuiteId for a push.
 * Parses and decides; knows nothing of Fastify.
 */

/** A suite's callback settings. */
export interface CallbackSuite { suiteId: string, token: string, encodingAESKey: string }

/**
 * A push, its fields under WeCom's names as the text WeCom wrote: `SuiteId`, `InfoType`
 * (`suite_ticket`, `create_auth`, `change_auth`, `cancel_auth`, `reset_permanent_code`, …),
 * `TimeStamp` (epoch seconds), and the type's own (`SuiteTicket`, `AuthCode`, `AuthCorpId`, …).
 */
export type SuitePush = WecomEvent & { SuiteId: string, InfoType: string, TimeStamp: string }

/** GET: the URL check of a suite's callback, its `echostr` encrypted for the provider's CorpID. */
export function verifySuiteUrl (suites: readonly CallbackSuite[], providerCorpId: string, query: CallbackQuery, now: number): string {
  return verifyUrl(suites.map(({ token, encodingAESKey }) => ({ corpId: providerCorpId, token, encodingAESKey })), query, now)
}

/** POST: one push to a suite's callback, encrypted for its SuiteId; the suite and the push. */
export function openSuitePush (suites: readonly CallbackSuite[], query: CallbackQuery, body: unknown, now: number): { suite: CallbackSuite, push: SuitePush } {
  const receivers: CallbackCorp[] = suites.map(({ suiteId, token, encodingAESKey }) => ({ corpId: suiteId, token, encodingAESKey }))
  const { receiver, message } = openMessage(receivers, query, body, now)
  const suite = suites.find(({ suiteId }) => suiteId === receiver.corpId)!
  // The receiver id inside the ciphertext is the suite; the SuiteId inside must agree with it.
  if (message.SuiteId !== suite.suiteId) throw new CallbackForbiddenError('the push is not for that suite')
  if (typeof message.InfoType !== 'string' || message.InfoType === '') throw new CallbackInvalidError('the push has no InfoType')
  if (!isTimestamp(message.TimeStamp)) throw new CallbackInvalidError('the push has no TimeStamp')
  return { suite, push: message as SuitePush }
}
