import { createHash } from 'node:crypto'
import type { WecomEvent } from './callback.js'

/**
 * What WeCom's events do to sessions (doc path/90970 "成员变更通知", path/90240 "成员关注及取消关注
 * 事件"): a member deleted, disabled or not active, renamed (the old userid), or out of the app's
 * visible range loses every session made before the event; a member whose departments changed is
 * asked about again (user/get), since only that tells whether they are still in the range.
 *
 * A delivery is handled once across instances: WeCom resends one it got no answer to within 5 s,
 * and a resend, in its old envelope or a new one, decrypts to the same event. And the off-boarding
 * ends what was made before the event, never after it: a replay that got past the memory of
 * deliveries (a Redis without persistence, restarted) cannot end a session of a member re-added
 * since.
 */

/** Why a member's sessions end, as the log line says it. */
export type OffboardingCause = 'deleted' | 'not active' | 'userid changed' | 'left the visible range'

/** The slice of a pino logger this module writes to. */
export interface EventLogger {
  info (fields: object, message: string): void
  warn (fields: object, message: string): void
  error (fields: object, message: string): void
}

export interface OffboardingDependencies<R> {
  /** Ends the member's sessions and access tokens made until `at` (epoch ms). */
  revokeUser (corpId: string, userid: string, at: number, request: R): Promise<void>
  /** Asks WeCom about the member now: false when they may no longer use the app. */
  stillAllowed (corpId: string, userid: string, request: R): Promise<boolean>
  /** The store's memory of deliveries (SessionStore.firstDelivery). */
  firstDelivery (key: string, ttl: number): Promise<boolean>
  onEvent?: (event: WecomEvent, request: R) => void | Promise<void>
  log: EventLogger
}

/**
 * How long a delivery is remembered. WeCom resends within seconds, three times at most; a recorded
 * delivery is refused after TIMESTAMP_WINDOW; a day is far beyond both, and costs one small key
 * per event.
 */
export const DELIVERY_MEMORY = 24 * 60 * 60 * 1000

/** WeCom's Status: 1 active; 2 disabled, 4 not activated, 5 left (doc path/90970). */
const ACTIVE = '1'

export function createOffboarding<R> (deps: OffboardingDependencies<R>): {
  /** Handles one delivery of `corpId`'s event; resolves when done, or at once for a resend. */
  handle (corpId: string, event: WecomEvent, request: R): Promise<void>
} {
  async function revoke (corpId: string, userid: string, cause: OffboardingCause, event: WecomEvent, request: R): Promise<void> {
    // The end of the event's second: CreateTime has whole seconds, and whatever was issued within
    // it may have come before the event. Never later than now (sessions.revokeUser caps it).
    const at = (Number(event.CreateTime) + 1) * 1000 - 1
    try {
      await deps.revokeUser(corpId, userid, at, request)
    } catch (error) {
      // The delivery is remembered already: WeCom's resend will not run it again.
      deps.log.error({ err: error, corpId, userid, event: kindOf(event), action: 'revokeUser', cause },
        'wecom: WeCom\'s event could not end the member\'s sessions (store unavailable); run revokeUser for them')
      throw error
    }
    deps.log.info({ corpId, userid, event: kindOf(event), action: 'revokeUser', cause }, `wecom: ${cause} member's sessions ended by WeCom's event`)
  }

  async function recheck (corpId: string, userid: string, event: WecomEvent, request: R): Promise<void> {
    let allowed: boolean
    try {
      allowed = await deps.stillAllowed(corpId, userid, request)
    } catch {
      // WeCom unavailable: the next refresh asks again (session.recheckInterval).
      deps.log.warn({ corpId, userid, event: kindOf(event), action: 'recheck' }, 'wecom: could not recheck the member after their departments changed; the next refresh will')
      return
    }
    if (allowed) deps.log.info({ corpId, userid, event: kindOf(event), action: 'recheck' }, 'wecom: member still allowed after their departments changed')
    else await revoke(corpId, userid, 'left the visible range', event, request)
  }

  return {
    async handle (corpId, event, request) {
      if (!await deps.firstDelivery(deliveryKey(corpId, event), DELIVERY_MEMORY)) {
        deps.log.info({ corpId, event: kindOf(event), action: 'none' }, 'wecom: event delivered again; answered without a second effect')
        return
      }
      const userid = text(event.UserID)
      const kind = kindOf(event)
      if (kind === 'change_contact/delete_user' && userid !== '') {
        await revoke(corpId, userid, 'deleted', event, request)
      } else if (kind === 'change_contact/update_user' && userid !== '') {
        const newUserid = text(event.NewUserID)
        const status = text(event.Status)
        if (status !== '' && status !== ACTIVE) await revoke(corpId, userid, 'not active', event, request)
        else if (newUserid !== '' && newUserid !== userid) await revoke(corpId, userid, 'userid changed', event, request)
        else if (event.Department !== undefined) await recheck(corpId, userid, event, request)
      } else if (kind === 'unsubscribe' && text(event.FromUserName) !== '') {
        // The member was taken out of the app's visible range (or left the corp).
        await revoke(corpId, text(event.FromUserName), 'left the visible range', event, request)
      }
      if (deps.onEvent === undefined) return
      try {
        await deps.onEvent(event, request)
      } catch (error) {
        // Answered `success` all the same: a resend would not reach onEvent again.
        deps.log.error({ err: error, corpId, event: kindOf(event) }, 'wecom: onEvent failed')
      }
    }
  }
}

/**
 * The same event whatever its envelope or the XML's spacing: a digest of its fields in a fixed
 * order. Two different events differ in a field (the member, the change, the time).
 */
function deliveryKey (corpId: string, event: WecomEvent): string {
  return createHash('sha256').update(JSON.stringify([corpId, canonical(event)])).digest('base64url')
}

function canonical (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value !== 'object' || value === null) return value
  return Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])])
}

function text (value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** `change_contact/delete_user`, `unsubscribe`, …: what the log line names. */
function kindOf (event: WecomEvent): string {
  const change = text(event.ChangeType)
  return change === '' ? text(event.Event) : `${text(event.Event)}/${change}`
}
