import { CallbackRetryError } from '../errors.js'
import type { WecomEvent } from './callback.js'
import { actOnce, deliveryKey, RETRY, type DeliveryClaims } from './deliveries.js'

/**
 * What WeCom's events do to sessions (doc path/90970 "成员变更通知", path/90240 "成员关注及取消关注
 * 事件"): a member deleted, disabled or not active, renamed (the old userid), or out of the app's
 * visible range loses every session made before the event; a member whose departments changed is
 * asked about again (user/get), since only that tells whether they are still in the range.
 *
 * A delivery is acted on once across instances, or not acknowledged: WeCom resends one it got no
 * `success` for within 5 s, three times, and a resend, in its old envelope or a new one, decrypts
 * to the same event. The first delivery claims the event in the store, acts, and settles it: done
 * when every effect succeeded (a resend is then answered `success` with no second effect), else
 * the claim is released and the answer is a 503, so that WeCom's resend acts on it again. An
 * effect that succeeded before another failed is safe to run again: the off-boarding ends what was
 * made before the event, never after it, so neither a resend nor a replay that got past the
 * memory of deliveries (a Redis without persistence, restarted) ends a session of a member
 * re-added since.
 */

/** Why a member's sessions end, as the log line says it. */
export type OffboardingCause = 'deleted' | 'not active' | 'userid changed' | 'left the visible range'

export interface OffboardingDependencies<R> extends DeliveryClaims {
  /** Ends the member's sessions and access tokens made until `at` (epoch ms). */
  revokeUser (corpId: string, userid: string, at: number, request: R): Promise<void>
  /** Asks WeCom about the member now: false when they may no longer use the app. */
  stillAllowed (corpId: string, userid: string, request: R): Promise<boolean>
  onEvent?: (event: WecomEvent, request: R) => void | Promise<void>
}

/** WeCom's Status: 1 active; 2 disabled, 4 not activated, 5 left (doc path/90970). */
const ACTIVE = '1'

export function createOffboarding<R> (deps: OffboardingDependencies<R>): {
  /**
   * Handles one delivery of `corpId`'s event: resolves when it was acted on, or at once for one
   * done already. Rejects, so that the route answers no `success`, when an effect failed (with the
   * failure's error: 503 WECOM_STORE_UNAVAILABLE or WECOM_UNAVAILABLE, 502 WECOM_UPSTREAM_ERROR)
   * or onEvent threw, or another delivery of it is being handled (503 WECOM_CALLBACK_RETRY).
   */
  handle (corpId: string, event: WecomEvent, request: R): Promise<void>
} {
  return { handle: (corpId, event, request) => handle(deps, corpId, event, request) }
}

async function handle<R> (deps: OffboardingDependencies<R>, corpId: string, event: WecomEvent, request: R): Promise<void> {
  await actOnce(deps, deliveryKey(corpId, event), { corpId, event: kindOf(event) }, () => act(deps, corpId, event, request))
}

/** Every effect of the event, in order; rejects at the first that failed. */
async function act<R> (deps: OffboardingDependencies<R>, corpId: string, event: WecomEvent, request: R): Promise<void> {
  const userid = text(event.UserID)
  const kind = kindOf(event)
  if (kind === 'change_contact/delete_user' && userid !== '') {
    await revoke(deps, corpId, userid, 'deleted', event, request)
  } else if (kind === 'change_contact/update_user' && userid !== '') {
    const newUserid = text(event.NewUserID)
    const status = text(event.Status)
    if (status !== '' && status !== ACTIVE) await revoke(deps, corpId, userid, 'not active', event, request)
    else if (newUserid !== '' && newUserid !== userid) await revoke(deps, corpId, userid, 'userid changed', event, request)
    else if (event.Department !== undefined) await recheck(deps, corpId, userid, event, request)
  } else if (kind === 'unsubscribe' && text(event.FromUserName) !== '') {
    // The member was taken out of the app's visible range (or left the corp).
    await revoke(deps, corpId, text(event.FromUserName), 'left the visible range', event, request)
  }
  if (deps.onEvent === undefined) return
  try {
    await deps.onEvent(event, request)
  } catch (error) {
    // The host's error stays in the log: the answer goes to WeCom.
    deps.log.error({ err: error, corpId, event: kind }, `wecom: onEvent failed; ${RETRY}`)
    throw new CallbackRetryError('onEvent failed')
  }
}

async function revoke<R> (deps: OffboardingDependencies<R>, corpId: string, userid: string, cause: OffboardingCause, event: WecomEvent, request: R): Promise<void> {
  // The end of the event's second: CreateTime has whole seconds, and whatever was issued within
  // it may have come before the event. Never later than now (sessions.revokeUser caps it).
  const at = (Number(event.CreateTime) + 1) * 1000 - 1
  try {
    await deps.revokeUser(corpId, userid, at, request)
  } catch (error) {
    deps.log.error({ err: error, corpId, userid, event: kindOf(event), action: 'revokeUser', cause },
      `wecom: WeCom's event could not end the member's sessions (store unavailable); ${RETRY}`)
    throw error
  }
  deps.log.info({ corpId, userid, event: kindOf(event), action: 'revokeUser', cause }, `wecom: ${cause} member's sessions ended by WeCom's event`)
}

async function recheck<R> (deps: OffboardingDependencies<R>, corpId: string, userid: string, event: WecomEvent, request: R): Promise<void> {
  let allowed: boolean
  try {
    allowed = await deps.stillAllowed(corpId, userid, request)
  } catch (error) {
    deps.log.warn({ err: error, corpId, userid, event: kindOf(event), action: 'recheck' },
      `wecom: could not recheck the member after their departments changed; ${RETRY}`)
    throw error
  }
  if (allowed) deps.log.info({ corpId, userid, event: kindOf(event), action: 'recheck' }, 'wecom: member still allowed after their departments changed')
  else await revoke(deps, corpId, userid, 'left the visible range', event, request)
}

function text (value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** `change_contact/delete_user`, `unsubscribe`, …: what the log line names. */
function kindOf (event: WecomEvent): string {
  const change = text(event.ChangeType)
  return change === '' ? text(event.Event) : `${text(event.Event)}/${change}`
}
