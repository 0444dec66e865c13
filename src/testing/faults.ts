/**
 * Faults queued per endpoint: the next calls answer an errcode, hang, drop the connection, answer
 * HTML, or answer late or slowly (delay, trickle) instead of as WeCom normally does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { nonNegative, type Timers } from './time.js'
import { errmsgFor, writeReply } from './wire.js'

export type SimulatedFault =
  | { errcode: number; errmsg?: string }
  | { timeout: true }
  | { drop: true }
  | { malformed: true }
  | { delay: number }
  /** Answers normally, but sends the body one byte every `trickle` ms. */
  | { trickle: number }

/**
 * WeCom's transient faults, every kind, by name: a hang, a reset, an HTML page, busy (-1), and a
 * token WeCom calls stale (42001, 40014). Each should cost the call it hit and no more: soaks
 * (`mixFaults`) draw from these.
 */
export const TRANSIENT_FAULTS: Readonly<Record<string, SimulatedFault>> = {
  '-1': { errcode: -1 },
  hang: { timeout: true },
  reset: { drop: true },
  HTML: { malformed: true },
  42001: { errcode: 42001 },
  40014: { errcode: 40014 }
}

/** A fault after which the endpoint still answers as usual, only later or more slowly. */
type SlowFault = Extract<SimulatedFault, { delay: number } | { trickle: number }>

interface QueuedFault {
  fault: SimulatedFault
  remaining: number
}

/** Faults drawn at random for calls that have none queued (see SimulatedFaultMix). */
export interface SimulatedFaultMix {
  /** The chance, from 0 to 1, that a call meets one of `faults`. */
  share: number
  /** Drawn with equal chance when a call meets one. */
  faults: SimulatedFault[]
  /** The same seed meets the same faults in the same order. Default 1. */
  seed?: number
}

interface Mix { share: number, faults: SimulatedFault[], next: () => number }

/** A small deterministic generator (an LCG), so that two runs meet the same faults in the same order. */
function random (seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

export class FaultQueue<Endpoint extends string> {
  private readonly queues = new Map<Endpoint, QueuedFault[]>()
  private readonly mixes = new Map<Endpoint, Mix>()
  /** Faults of a mix met so far, per endpoint. */
  readonly met = new Map<Endpoint, number>()

  /** From now on, every call of the endpoint with no fault queued meets one of `mix.faults` with chance `mix.share`. */
  mix (endpoint: Endpoint, mix: SimulatedFaultMix): void {
    if (!(mix.share >= 0 && mix.share <= 1) || mix.faults.length === 0) {
      throw new Error('a fault mix needs a share from 0 to 1 and at least one fault')
    }
    this.mixes.set(endpoint, { share: mix.share, faults: mix.faults.map((fault) => ({ ...fault })), next: random(mix.seed ?? 1) })
  }

  /** Queues a fault for the next `times` calls of the endpoint (Infinity allowed). */
  inject (endpoint: Endpoint, fault: SimulatedFault, times: number): void {
    if (!(times === Infinity || (Number.isInteger(times) && times >= 1))) {
      throw new Error(`inject times must be a positive integer or Infinity, got ${times}`)
    }
    if ('delay' in fault) nonNegative('delay', fault.delay)
    if ('trickle' in fault) nonNegative('trickle', fault.trickle)
    const queue = this.queues.get(endpoint) ?? []
    queue.push({ fault: { ...fault }, remaining: times })
    this.queues.set(endpoint, queue)
  }

  /** The fault for this call, if any is queued: taken on arrival, so concurrent calls take them in order. */
  take (endpoint: Endpoint): SimulatedFault | undefined {
    const queue = this.queues.get(endpoint)
    const head = queue?.[0]
    if (!queue || !head) return this.draw(endpoint)
    head.remaining -= 1
    if (head.remaining <= 0) queue.shift()
    return head.fault
  }

  clear (): void {
    this.queues.clear()
    this.mixes.clear()
  }

  private draw (endpoint: Endpoint): SimulatedFault | undefined {
    const mix = this.mixes.get(endpoint)
    if (mix === undefined || mix.next() >= mix.share) return undefined
    this.met.set(endpoint, (this.met.get(endpoint) ?? 0) + 1)
    return mix.faults[Math.floor(mix.next() * mix.faults.length)]
  }
}

/** Milliseconds the fault holds the answer back before it starts. */
export function delayOf (fault: SimulatedFault | undefined): number {
  return fault !== undefined && 'delay' in fault ? fault.delay : 0
}

/** Whether the endpoint answers as usual despite the fault (none, or a delay or a trickle). */
export function answersNormally (fault: SimulatedFault | undefined): fault is SlowFault | undefined {
  return fault === undefined || 'delay' in fault || 'trickle' in fault
}

/**
 * Answers a call as a fault that replaces WeCom's answer: an errcode (recorded through
 * `errcode`), a dropped socket, an HTML page, or (a timeout) nothing until close() destroys the
 * socket. `sent` is called once the answer is out; never for a timeout.
 */
export function answerFault (
  fault: Exclude<SimulatedFault, SlowFault>,
  req: IncomingMessage,
  res: ServerResponse,
  timers: Timers,
  record: { errcode: (errcode: number) => void, sent: () => void }
): void {
  if ('errcode' in fault) {
    record.errcode(fault.errcode)
    writeReply(res, { errcode: fault.errcode, errmsg: fault.errmsg ?? errmsgFor(fault.errcode) }, timers, record.sent)
  } else if ('drop' in fault) {
    record.sent()
    req.socket.destroy()
  } else if ('malformed' in fault) {
    record.sent()
    if (res.destroyed) return
    res.writeHead(200, { 'content-type': 'text/html; charset=UTF-8' })
    res.end('<html><body><h1>502 Bad Gateway</h1></body></html>')
  }
}
