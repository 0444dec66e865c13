/**
 * Events sent to a corp's callback URL as WeCom sends them: the URL checked first, each event
 * POSTed signed and encrypted, resent without `success` (doc path/90930), replayable on demand.
 */
import { randomBytes } from 'node:crypto'
import type { Directory } from './directory.js'
import { callbackRequest, eventXml, type CallbackRequest, type SimulatedCallback } from './envelope.js'
import type { SimulatorClock, Timers } from './time.js'

/** One event the simulator sent (or tried to send) to a corp's callback URL. */
export interface SimulatedDelivery {
  corpId: string
  /** The event's fields as sent, e.g. { Event: 'change_contact', ChangeType: 'delete_user', UserID }. */
  readonly event: Readonly<Record<string, string>>
  /** The decrypted XML, as the callback should read it. */
  readonly xml: string
  /**
   * POSTs made so far: the first, then one 5 s (callbackRetryDelay) after each without `success`,
   * three at most. 0 when the URL failed WeCom's check: nothing was sent.
   */
  readonly attempts: number
  /** The callback answered `success`. */
  readonly acknowledged: boolean
}

/** What a callback answered one POST. */
export interface CallbackAnswer { status: number, body: string }

/** Whether an answer is WeCom's acknowledgement: HTTP 200 and `success` (doc path/90238). */
export function isAcknowledged (answer: CallbackAnswer | undefined): boolean {
  return answer?.status === 200 && answer.body.trim() === 'success'
}

interface DeliveryState extends SimulatedDelivery {
  attempts: number
  acknowledged: boolean
}

/** WeCom POSTs an event again after 5 s without `success`, three times (doc path/90930). */
const CALLBACK_RETRIES = 3
const CALLBACK_TIMEOUT = 5000

function noop (): void {}

/** One request to a callback URL as WeCom makes it, given up after WeCom's 5 s or on `signal`. */
export async function sendCallback (url: string, request: CallbackRequest, method: 'GET' | 'POST', signal: AbortSignal): Promise<CallbackAnswer> {
  const response = await fetch(`${url}${url.includes('?') ? '&' : '?'}${request.query}`, {
    method,
    headers: method === 'POST' ? { 'content-type': 'text/xml' } : {},
    body: method === 'POST' ? request.body : undefined,
    signal: AbortSignal.any([signal, AbortSignal.timeout(CALLBACK_TIMEOUT)]),
  })
  return { status: response.status, body: await response.text() }
}

export class Callbacks {
  readonly deliveries: DeliveryState[] = []
  /** What each delivery sent first, for redeliver('same'). */
  private readonly firstRequests = new WeakMap<SimulatedDelivery, CallbackRequest>()
  /** Aborts the callbacks' requests in flight when the simulator closes. */
  private readonly outgoing = new AbortController()

  /** `retryDelay` in milliseconds; envelopes carry the wall clock's time, as an app compares it with its own. */
  constructor (
    private readonly directory: Directory,
    private readonly clock: SimulatorClock,
    private readonly timers: Timers,
    private readonly retryDelay: number
  ) {}

  /** Saves a corp's callback once its URL passed WeCom's check; rejects if it failed. */
  async save (corpId: string, callback: SimulatedCallback): Promise<void> {
    const corp = this.directory.corp(corpId)
    await this.checkUrl(corpId, callback)
    corp.callback = { config: { ...callback }, checked: true }
  }

  /** Sends an event to the corp's callback, if it has one; resolves after the first POST. */
  async deliver (corpId: string, fields: Record<string, string | number>): Promise<DeliveryState | undefined> {
    const corp = this.directory.corp(corpId)
    if (corp.callback === undefined) return undefined
    const event: Record<string, string> = { ToUserName: corpId, FromUserName: 'sys', CreateTime: String(this.seconds()), MsgType: 'event' }
    for (const [name, value] of Object.entries(fields)) event[name] = String(value)
    if (fields.CreateTime === undefined) event.CreateTime = String(this.ownSecond(corpId, event))
    const delivery: DeliveryState = { corpId, event, xml: eventXml(event), attempts: 0, acknowledged: false }
    this.deliveries.push(delivery)
    const { config } = corp.callback
    if (!corp.callback.checked) {
      // As in WeCom, nothing is sent to a URL that fails the check (the next event checks again).
      if (!await this.checkUrl(corpId, config).then(() => true, () => false)) return delivery
      corp.callback.checked = true
    }
    const first = this.eventRequest(corpId, config, delivery.xml)
    this.firstRequests.set(delivery, first)
    await this.attempt(delivery, config.url, first)
    return delivery
  }

  /** One more POST of a delivery: the very request sent first, or the event freshly sealed. */
  async redeliver (delivery: SimulatedDelivery, envelope: 'same' | 'new'): Promise<CallbackAnswer> {
    const first = this.firstRequests.get(delivery)
    const config = this.directory.find(delivery.corpId)?.callback?.config
    if (first === undefined || config === undefined) throw new Error('WeCom simulator: not a delivery this simulator sent')
    const request = envelope === 'same' ? first : this.eventRequest(delivery.corpId, config, delivery.xml)
    return this.call(config.url, request, 'POST')
  }

  /** Aborted when the simulator closes: for its other outgoing requests too. */
  get signal (): AbortSignal {
    return this.outgoing.signal
  }

  /** Ends the requests in flight; no resend is scheduled afterwards. */
  abort (): void {
    this.outgoing.abort()
  }

  /**
   * A receiver tells a resend from a new event by its fields, as WeCom advises (CreateTime
   * included): an event like one sent earlier in the same second (a member removed, restored and
   * removed again within it) is dated the next second, as two real events would be.
   */
  private ownSecond (corpId: string, event: Record<string, string>): number {
    const fields = (sent: Record<string, string>): string => JSON.stringify({ ...sent, CreateTime: undefined })
    const same = fields(event)
    let second = Number(event.CreateTime)
    for (const earlier of this.deliveries) {
      if (earlier.corpId === corpId && fields(earlier.event) === same) second = Math.max(second, Number(earlier.event.CreateTime) + 1)
    }
    return second
  }

  private seconds (): number {
    return Math.floor(this.clock.wall() / 1000)
  }

  private eventRequest (corpId: string, config: SimulatedCallback, xml: string): CallbackRequest {
    return callbackRequest(corpId, config, xml, { agentId: this.directory.corp(corpId).agentId }, this.seconds())
  }

  private call (url: string, request: CallbackRequest, method: 'GET' | 'POST'): Promise<CallbackAnswer> {
    return sendCallback(url, request, method, this.outgoing.signal)
  }

  /** WeCom's URL check: the plain text of an encrypted echostr must come back. */
  private async checkUrl (corpId: string, config: SimulatedCallback): Promise<void> {
    const echo = randomBytes(9).toString('base64url')
    const request = callbackRequest(corpId, config, echo, { echostr: true }, this.seconds())
    const answer = await this.call(config.url, request, 'GET').catch(() => undefined)
    if (answer?.status !== 200 || answer.body !== echo) {
      throw new Error(`WeCom simulator: the callback URL of corp ${JSON.stringify(corpId)} failed WeCom's check (${answer === undefined ? 'no answer' : `HTTP ${answer.status}`})`)
    }
  }

  /** One POST of a delivery; without `success`, another after retryDelay, CALLBACK_RETRIES at most. */
  private async attempt (delivery: DeliveryState, url: string, request: CallbackRequest): Promise<void> {
    delivery.attempts += 1
    const answer = await this.call(url, request, 'POST').catch(() => undefined)
    if (isAcknowledged(answer)) {
      delivery.acknowledged = true
      return
    }
    if (delivery.attempts > CALLBACK_RETRIES || this.outgoing.signal.aborted) return
    this.timers.after(this.retryDelay, () => { this.attempt(delivery, url, request).catch(noop) })
  }
}
