/**
 * The service provider's side of WeCom (issue 19), as far as it goes yet: its suites' command
 * callback, checked for the provider's CorpID, and `suite_ticket` pushed to it, encrypted for the
 * SuiteId (doc path/90628, path/95373), on demand: late, twice or out of order as a test asks.
 */
import { randomBytes } from 'node:crypto'
import { sendCallback, type CallbackAnswer } from './callbacks.js'
import { callbackRequest, eventXml } from './envelope.js'
import { SimulatorNotFoundError } from './errors.js'
import type { SimulatorClock } from './time.js'

/** A suite as the provider's admin console has it: its id, secret, and its callback's Token and EncodingAESKey. */
export interface SimulatedSuite {
  suiteId: string
  secret: string
  token: string
  encodingAESKey: string
  /** A third-party app (the default) or a 代开发 template, whose corps' tokens come from gettoken with the permanent code. */
  kind?: 'third-party' | 'custom'
  /** The hosts (host:port) a third-party suite's pages may redirect to (its 可信域名); any when not given. */
  trustedDomains?: string[]
}

/** A suite_ticket pushed: the ticket, the push's TimeStamp (epoch seconds), and what the callback answered. */
export interface SuiteTicketPush { ticket: string, timestamp: number, answer: CallbackAnswer | undefined }

/** Seconds a suite_ticket is valid after its push (doc path/90628). */
const TICKET_LIFE_S = 30 * 60

export class SuitePushes {
  readonly #suites: Map<string, SimulatedSuite>
  /** The tickets pushed, per suite, newest last. */
  readonly #tickets = new Map<string, SuiteTicketPush[]>()
  /**
   * Until when (ms, by the clock advance() moves) each ticket is valid, by suite and ticket: its
   * TimeStamp is the wall clock's (the plugin reads it), its age the simulated clock's.
   */
  readonly #validUntil = new Map<string, number>()
  #url: string | undefined

  constructor (
    private readonly provider: string,
    suites: readonly SimulatedSuite[],
    private readonly clock: SimulatorClock,
    private readonly signal: AbortSignal
  ) {
    this.#suites = new Map(suites.map((suite) => [suite.suiteId, { ...suite }]))
  }

  /** Saves the suites' callback URL once each suite's URL check passed there (echostr for the provider's CorpID). */
  async connect (url: string): Promise<void> {
    for (const suite of this.#suites.values()) {
      const echo = randomBytes(9).toString('base64url')
      const request = callbackRequest(this.provider, suite, echo, { echostr: true }, this.#seconds())
      const answer = await sendCallback(url, request, 'GET', this.signal).catch(() => undefined)
      if (answer?.status !== 200 || answer.body !== echo) {
        throw new Error(`WeCom simulator: the command callback URL of suite ${JSON.stringify(suite.suiteId)} failed WeCom's check (${answer === undefined ? 'no answer' : `HTTP ${answer.status}`})`)
      }
    }
    this.#url = url
  }

  /**
   * Pushes a suite_ticket: a new one dated now unless `options` give the ticket or TimeStamp (a
   * late or repeated push). Resolves with the callback's answer, undefined when none came.
   */
  async pushTicket (suiteId: string, options: { ticket?: string, timestamp?: number } = {}): Promise<SuiteTicketPush> {
    const ticket = options.ticket ?? randomBytes(24).toString('base64url')
    const timestamp = options.timestamp ?? this.#seconds()
    const answer = await this.push(suiteId, { InfoType: 'suite_ticket', TimeStamp: timestamp, SuiteTicket: ticket })
    const push = { ticket, timestamp, answer }
    this.#tickets.set(suiteId, [...(this.#tickets.get(suiteId) ?? []), push])
    // A push dated earlier (a late one) has that much less left.
    const until = this.clock.now() + (timestamp + TICKET_LIFE_S - this.#seconds()) * 1000
    const key = ticketKey(suiteId, ticket)
    this.#validUntil.set(key, Math.max(until, this.#validUntil.get(key) ?? 0))
    return push
  }

  /**
   * Pushes `fields` (InfoType and its own; TimeStamp now unless given) to the suites' callback,
   * encrypted for the SuiteId: the callback's answer, undefined when none came.
   */
  async push (suiteId: string, fields: Record<string, string | number>): Promise<CallbackAnswer | undefined> {
    const suite = this.#suites.get(suiteId)
    if (suite === undefined) throw new SimulatorNotFoundError(`unknown suite ${JSON.stringify(suiteId)}`)
    if (this.#url === undefined) throw new Error('WeCom simulator: no suite callback URL yet (connectSuites)')
    const xml = eventXml({ SuiteId: suiteId, TimeStamp: this.#seconds(), ...fields })
    const request = callbackRequest(suiteId, suite, xml, { agentId: 0 }, this.#seconds())
    return await sendCallback(this.#url, request, 'POST', this.signal).catch(() => undefined)
  }

  /**
   * A corp's event to the suite's 数据回调 (doc path/95373), encrypted for the corp's corpid, once,
   * under the install's AgentID whatever app of the corp's the event named: what it answered,
   * undefined when none came or no URL is connected yet.
   */
  async event (suiteId: string, corpId: string, agentId: number, fields: Record<string, string | number>): Promise<CallbackAnswer | undefined> {
    const suite = this.#suites.get(suiteId)
    if (suite === undefined || this.#url === undefined) return undefined
    const xml = eventXml({ ToUserName: corpId, FromUserName: 'sys', CreateTime: this.#seconds(), MsgType: 'event', ...fields, AgentID: agentId })
    const request = callbackRequest(corpId, suite, xml, { agentId }, this.#seconds())
    return await sendCallback(this.#url, request, 'POST', this.signal).catch(() => undefined)
  }

  /** Every suite's id. */
  ids (): string[] {
    return [...this.#suites.keys()]
  }

  /** The suite's id when there is exactly one. */
  only (): string | undefined {
    return this.#suites.size === 1 ? [...this.#suites.keys()][0] : undefined
  }

  /** The suite, if the simulator has it. */
  suite (suiteId: string): SimulatedSuite | undefined {
    return this.#suites.get(suiteId)
  }

  /** Whether `ticket` was pushed to the suite within WeCom's 30 minutes of validity. */
  ticketValid (suiteId: string, ticket: string): boolean {
    // By the clock advance() moves, as every other thing WeCom issues ages.
    return (this.#validUntil.get(ticketKey(suiteId, ticket)) ?? 0) > this.clock.now()
  }

  /** The tickets pushed to the suite so far, oldest first. */
  ticketsOf (suiteId: string): readonly SuiteTicketPush[] {
    if (!this.#suites.has(suiteId)) throw new SimulatorNotFoundError(`unknown suite ${JSON.stringify(suiteId)}`)
    return this.#tickets.get(suiteId) ?? []
  }

  #seconds (): number {
    return Math.floor(this.clock.wall() / 1000)
  }
}

function ticketKey (suiteId: string, ticket: string): string {
  return `${suiteId}\u0000${ticket}`
}
