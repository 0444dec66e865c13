import { createHash } from 'node:crypto'
import { CallbackRetryError } from '../errors.js'
import type { DeliveryClaim } from '../stores/store.js'
import type { WecomEvent } from './callback.js'

/**
 * A callback delivery acted on once across instances, or not acknowledged (doc path/90968): WeCom
 * resends one it got no `success` for within 5 s, three times, and a resend, in its old envelope
 * or a new one, decrypts to the same message. The first delivery claims it in the store, acts, and
 * settles it: done when every effect succeeded (a resend is then answered `success` with no
 * second effect), else the claim is released and the answer is a 503, so that WeCom's resend acts
 * on it again. Used by the corps' events (offboarding.ts) and the suites' pushes alike.
 */

/** The slice of a pino logger this module writes to. */
export interface EventLogger {
  info (fields: object, message: string): void
  warn (fields: object, message: string): void
  error (fields: object, message: string): void
}

/** The store's claims on deliveries (SessionStore.claimDelivery, settleDelivery, renewDelivery). */
export interface DeliveryClaims {
  claimDelivery (key: string, lease: number): Promise<DeliveryClaim>
  settleDelivery (key: string, id: string, done: boolean, ttl: number): Promise<void>
  renewDelivery (key: string, id: string, lease: number): Promise<boolean>
  /** Milliseconds a delivery's claim holds: deliveryLease(api.timeout). */
  lease: number
  log: EventLogger
}

/**
 * How long a delivery is remembered as done. WeCom resends within seconds, three times at most; a
 * recorded delivery is refused after TIMESTAMP_WINDOW; a day is far beyond both, and costs one
 * small key per event.
 */
export const DELIVERY_MEMORY = 24 * 60 * 60 * 1000

/**
 * Milliseconds a delivery's claim holds, for `timeout` (api.timeout). Longer than the work of one
 * delivery on a live instance, so that a resend arriving meanwhile never acts beside it: a few
 * store commands (a second each at most), the recheck (one deadline of `timeout` for the token
 * and user/get), the host's onRevoke and onEvent; twice the timeout leaves as much again for all
 * but the recheck. Shorter than WeCom's resends last (the third comes 15 s or more after the first
 * POST), so that the claim of an instance that died mid-work lapses and a resend acts: 10 s at
 * least, which the default timeout (5 s) gives. A timeout above 7.5 s trades that for the first:
 * an instance dying then may leave the event to no resend.
 */
export function deliveryLease (timeout: number): number {
  return Math.max(10_000, 2 * timeout)
}

export const RETRY = 'not acknowledged, WeCom\'s resend will retry it'

/**
 * Runs `work` for the delivery `key` once across instances: resolves at once for one done already,
 * rejects with 503 WECOM_CALLBACK_RETRY while another delivery of it is being handled, and with
 * `work`'s error when it failed (the claim released for WeCom's resend). `fields` name the
 * delivery in log lines.
 */
export async function actOnce (deps: DeliveryClaims, key: string, fields: object, work: () => Promise<void>): Promise<void> {
  const claim = await deps.claimDelivery(key, deps.lease)
  if (claim.state === 'done') {
    deps.log.info({ ...fields, action: 'none' }, 'wecom: event delivered again; answered without a second effect')
    return
  }
  if (claim.state === 'busy') {
    deps.log.info({ ...fields, action: 'none' }, `wecom: event delivered again while another delivery of it is being handled; ${RETRY}`)
    throw new CallbackRetryError('another delivery of this event is being handled')
  }
  let done = false
  const renewal = keepClaimed(deps, key, claim.id, fields)
  try {
    await work()
    done = true
  } finally {
    clearInterval(renewal)
    await settle(deps, key, claim.id, done, fields)
  }
}

/**
 * Renews the claim every third of its lease while the work goes on, however long the host's hooks
 * take: a resend then finds it busy rather than lapsed, and acts only once this instance stopped
 * renewing (it died mid-work). unref: a renewal never keeps the process alive.
 */
function keepClaimed (deps: DeliveryClaims, key: string, id: string, fields: object): NodeJS.Timeout {
  return setInterval(() => {
    deps.renewDelivery(key, id, deps.lease).then((held) => {
      if (!held) deps.log.warn({ ...fields, action: 'renew' }, 'wecom: the event\'s claim lapsed while it was being handled; another delivery may act on it too')
    }, (error: unknown) => {
      deps.log.warn({ err: error, ...fields, action: 'renew' }, 'wecom: the event\'s claim could not be renewed (store unavailable); it lapses after its lease')
    })
  }, Math.max(1, Math.floor(deps.lease / 3))).unref()
}

async function settle (deps: DeliveryClaims, key: string, id: string, done: boolean, fields: object): Promise<void> {
  try {
    await deps.settleDelivery(key, id, done, DELIVERY_MEMORY)
  } catch (error) {
    // Done: answered `success` all the same, since a resend would act a second time. Not done:
    // the answer is the failure's, and the claim lapses after its lease.
    deps.log.warn({ err: error, ...fields, action: 'settle' }, done
      ? 'wecom: event acted on, but not remembered as done (store unavailable); answered success'
      : `wecom: event's claim not released (store unavailable); it lapses in ${deps.lease} ms`)
  }
}

/**
 * The same event whatever its envelope or the XML's spacing: a digest of its fields in a fixed
 * order. Two different events differ in a field (the member, the change, the time).
 */
export function deliveryKey (corpId: string, event: WecomEvent): string {
  return createHash('sha256').update(JSON.stringify([corpId, canonical(event)])).digest('base64url')
}

function canonical (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value !== 'object' || value === null) return value
  return Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])])
}
