/**
 * A WeCom API simulator: a real HTTP server on loopback that answers gettoken, jscode2session,
 * user/get, message/send, the web apps' auth/getuserinfo, auth/getuserdetail and JS-SDK tickets
 * the way qyapi.weixin.qq.com does (always HTTP 200, success and failure told apart by `errcode`
 * only), that serves WeCom's OAuth2 authorize and PC web login pages on its own origin, and that sends a corp's callback URL the signed, encrypted events
 * WeCom sends. Built on node:http alone so that benchmarks can drive it at thousands of requests
 * per second without the simulator being the bottleneck; its callback crypto is node:crypto alone,
 * written from WeCom's description (doc path/90968), so that it checks the plugin's rather than
 * sharing it.
 *
 * The package's `./testing` entry. Every method that names a corp or member the simulator does
 * not have throws (or rejects with) SimulatorNotFoundError.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Callbacks, type CallbackAnswer, type SimulatedDelivery } from './callbacks.js'
import { SuitePushes, type SimulatedSuite, type SuiteTicketPush } from './suite-pushes.js'
import { SuiteInstalls } from './suite-installs.js'
import { SuiteTokens } from './suite-tokens.js'
import { SuiteTicketSchedule, type SuiteTicketFate } from './suite-ticket-schedule.js'
import { Credentials } from './credentials.js'
import { Directory, type SimulatedCorp, type SimulatedMember } from './directory.js'
import { AUTHORIZE_PATH, SSO_PATH } from './pages.js'
import type { EndpointContext } from './context.js'
import type { WecomEndpoint } from './endpoints.js'
import type { SimulatedCallback } from './envelope.js'
import { SimulatorNotFoundError } from './errors.js'
import type { SimulatedFault, SimulatedFaultMix } from './faults.js'
import { SimulatorServer, type SimulatedRequest } from './server.js'
import { JsapiTickets } from './tickets.js'
import { nonNegative, SimulatorClock, Timers } from './time.js'
import { sealUserInfo } from './user-info.js'
import { WebLogins, type WebScope, type WebVisitor } from './web-logins.js'

export type { CallbackAnswer, SimulatedDelivery } from './callbacks.js'
export { isAcknowledged } from './callbacks.js'
export type { SimulatedSuite, SuiteTicketPush } from './suite-pushes.js'
export type { SuiteTicketFate } from './suite-ticket-schedule.js'
export type { SimulatedCorp, SimulatedMember, SimulatedOutsider, SimulatedWebApp } from './directory.js'
export type { WecomEndpoint } from './endpoints.js'
export { callbackSignature, encryptCallbackMessage, type SimulatedCallback } from './envelope.js'
export { isSimulatorNotFound, SimulatorNotFoundError } from './errors.js'
export type { SimulatedFault, SimulatedFaultMix } from './faults.js'
export { TRANSIENT_FAULTS } from './faults.js'
export type { SimulatedRequest } from './server.js'
export { jsapiSignature } from './tickets.js'
export { encryptWithSessionKey } from './user-info.js'
export type { WebScope, WebVisitor } from './web-logins.js'

export interface WecomSimulatorOptions {
  corps?: SimulatedCorp[]
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0: a free port. */
  port?: number
  /** Seconds; expires_in of issued tokens. Default 7200. */
  tokenTtl?: number
  /** Seconds; life of a code, the mini program's (issueCode) and the web pages' alike. Default 300. */
  codeTtl?: number
  /** Milliseconds added to every call. Default 0. */
  latency?: number
  /**
   * Clock in milliseconds. Default Date.now. advance() moves the simulator ahead of it (codes,
   * tokens); callbacks carry this clock's time, as an app compares it with its own.
   */
  now?: () => number
  /** Milliseconds between a callback POST without `success` and its resend. Default 5000, WeCom's. */
  callbackRetryDelay?: number
  /**
   * Answers requests to paths outside WeCom's endpoints (body unread), where the default is
   * errcode 40066 as WeCom answers; the command-line simulator serves its /sim/ routes here.
   */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void
  /** The service provider's own CorpID, for which its suites' URL checks are encrypted. */
  provider?: { corpId: string }
  /** The provider's suites (third-party or 代开发 apps), whose command callback gets suite_ticket pushes. */
  suites?: SimulatedSuite[]
  /**
   * Seconds between the suite_ticket pushes to each suite once connectSuites succeeded, the first
   * at once (WeCom's every ten minutes would be 600); planSuiteTickets gives them bad days.
   * Default 0: none, a test pushes them with pushSuiteTicket.
   */
  suiteTicketEvery?: number
}

export interface WecomSimulator {
  /** Base URL, e.g. 'http://127.0.0.1:41234'; the endpoints live under /cgi-bin/. */
  readonly url: string
  /**
   * `${url}/connect/oauth2/authorize`: WeCom's OAuth2 page (open.weixin.qq.com's) for pages inside
   * WeCom. GET appid, redirect_uri, response_type=code, scope, state, agentid: without `userid`
   * (or an outsider's `openid`) an HTML page listing whom to pick, with it a 302 to
   * `redirect_uri?code=CODE&state=STATE`; refusals are HTML pages naming the errcode (50001 for a
   * redirect_uri off the app's trusted domains, 40013, 40056, 40058, 60111), without a redirect.
   */
  readonly authorizeUrl: string
  /**
   * `${url}/wwlogin/sso/login`: WeCom's PC web login page (login.work.weixin.qq.com's). GET
   * login_type=CorpApp, appid, agentid, redirect_uri, state, lang?: the same picker (members only)
   * and redirect as authorizeUrl, its code naming the member as snsapi_base does.
   */
  readonly ssoUrl: string
  /** Live counters of every request per endpoint, faulted or not. */
  readonly calls: Record<WecomEndpoint, number>
  resetCalls(): void
  /** The last 100 requests, oldest first, with query parameters as WeCom parsed them and what was answered. */
  readonly requests: ReadonlyArray<SimulatedRequest>
  /** Adds a corp, or replaces the secret, members, web apps and outsiders of one already there. */
  addCorp(corp: SimulatedCorp): void
  /** Adds or replaces a member. */
  setMember(corpId: string, member: SimulatedMember): void
  /** Copies of the corp's members as the directory holds them now (a removed member is gone), in the order added. */
  members(corpId: string): SimulatedMember[]
  updateMember(corpId: string, userid: string, patch: Partial<SimulatedMember>): void
  /**
   * Afterwards user/get answers 60111 for that userid; with a callback, the corp is sent
   * change_contact/delete_user, and so is each connected suite the corp installed (its 数据回调,
   * encrypted for the corpid, once). Resolves after the event's first POSTs (or at once without a
   * callback) with the corp callback's delivery; its resends go on in the background.
   */
  removeMember(corpId: string, userid: string): Promise<SimulatedDelivery | undefined>
  /** Status 2 (user/get refuses the login), and change_contact/update_user with Status 2. */
  disableMember(corpId: string, userid: string): Promise<SimulatedDelivery | undefined>
  /** Into or out of the app's visible range (60011 outside), and the subscribe / unsubscribe event. */
  setVisible(corpId: string, userid: string, visible: boolean): Promise<SimulatedDelivery | undefined>
  /**
   * Saves a corp's callback as the admin console does: the URL is checked first (a GET with an
   * encrypted echostr whose plain text must come back), and the promise rejects if it fails.
   */
  setCallback(corpId: string, callback: SimulatedCallback): Promise<void>
  /** Sends any event (ToUserName, CreateTime and MsgType are filled in unless given). */
  sendEvent(corpId: string, fields: Record<string, string | number>): Promise<SimulatedDelivery>
  /** Every event sent so far, oldest first. */
  readonly deliveries: ReadonlyArray<SimulatedDelivery>
  /**
   * POSTs a delivery again, once, as a resend or a replay: `same` is the very request sent first
   * (signature, timestamp, nonce, ciphertext), `new` the same event freshly signed and encrypted.
   */
  redeliver(delivery: SimulatedDelivery, envelope: 'same' | 'new'): Promise<CallbackAnswer>
  /** The bodies message/send accepted, per corp, oldest first. */
  readonly messages: ReadonlyArray<{ corpId: string, body: Record<string, unknown> }>
  /** Like wx.qy.login: a single-use code living codeTtl seconds, with a new session_key. */
  issueCode(corpId: string, userid: string): string
  /**
   * What the authorize page (or, with the default snsapi_base and an agentId, the web login page)
   * gives `visitor` for the redirect: a single-use code living codeTtl seconds, for
   * auth/getuserinfo with the token of app `agentId` (of any app of the corp without one); with
   * `suiteId`, a third-party suite's page's, for service/auth/getuserinfo3rd with the suite's token.
   * @throws SimulatorNotFoundError for an unknown corp, app, member, outsider or suite
   */
  issueWebCode(corpId: string, visitor: WebVisitor, options?: { agentId?: number, scope?: WebScope, suiteId?: string }): string
  /** The corp's live jsapi_ticket (get_jsapi_ticket), to check a wx.config signature with jsapiSignature; undefined if none. */
  jsapiTicket(corpId: string): string | undefined
  /** The app's live agent_config ticket (ticket/get), to check an agentConfig signature; undefined if none. */
  agentTicket(corpId: string, agentId: number): string | undefined
  /** The base64 session_key of the member's latest code. */
  sessionKey(corpId: string, userid: string): string | undefined
  /** What wx.qy.getMobile and friends return, encrypted with the member's current session_key. */
  encryptUserInfo(
    corpId: string,
    userid: string,
    data: Record<string, unknown>,
    appid: string,
  ): { encryptedData: string; iv: string }
  /** Applies to tokens issued from now on. */
  setTokenTtl(seconds: number): void
  /** Ends live tokens (of one corp, or all) early; using them afterwards answers `errcode`. */
  expireTokens(corpId?: string, errcode?: 42001 | 40014): void
  setLatency(ms: number): void
  /** Queues a fault for the next `times` calls of the endpoint (default 1; Infinity allowed). */
  inject(endpoint: WecomEndpoint, fault: SimulatedFault, times?: number): void
  /**
   * From now on, every call of `endpoint` with no fault queued meets one of `mix.faults` with
   * chance `mix.share`, drawn from a seeded generator: sparse faults for soaks. clearFaults() ends it.
   */
  mixFaults(endpoint: WecomEndpoint, mix: SimulatedFaultMix): void
  /** Faults of the mixes met so far, all endpoints together. */
  readonly faultsMet: number
  clearFaults(): void
  /**
   * Saves the suites' command callback URL (`{prefix}/suite/callback`) once WeCom's URL check of
   * each suite passed there (echostr encrypted for the provider's CorpID); rejects if one failed.
   */
  connectSuites(url: string): Promise<void>
  /**
   * Pushes a suite_ticket to the suites' callback, encrypted for the SuiteId: a new ticket dated
   * now, or the `ticket` and `timestamp` (epoch seconds) given, for a late or repeated push.
   * @throws SimulatorNotFoundError for an unknown suite
   */
  pushSuiteTicket(suiteId: string, options?: { ticket?: string, timestamp?: number }): Promise<SuiteTicketPush>
  /** The suite_tickets pushed to a suite so far, in the order they reached the callback. */
  suiteTickets(suiteId: string): readonly SuiteTicketPush[]
  /**
   * The fates of the suite's next timed pushes (suiteTicketEvery), in order, then on time again:
   * lost, late, sent twice, or out of order (held back until after the next one).
   * @throws SimulatorNotFoundError for an unknown suite
   */
  planSuiteTickets(fates: readonly SuiteTicketFate[], options?: { suiteId?: string }): void
  /**
   * The corp installs the suite (the only suite unless named): WeCom keeps the install and pushes
   * create_auth with a single-use AuthCode for get_permanent_code. Resolves with the callback's
   * answer, undefined when none came.
   * @throws SimulatorNotFoundError for an unknown corp or suite
   */
  install(corpId: string, options?: { suiteId?: string }): Promise<CallbackAnswer | undefined>
  /** The corp uninstalls the suite: its permanent code and tokens stop working, and cancel_auth is pushed. */
  uninstall(corpId: string, options?: { suiteId?: string }): Promise<CallbackAnswer | undefined>
  /** 代开发: a new permanent code for the corp (the old one stops working), pushed as reset_permanent_code with an AuthCode. */
  resetPermanentCode(corpId: string, options?: { suiteId?: string }): Promise<CallbackAnswer | undefined>
  /** Pushes any fields to a suite's callback (InfoType and its own; SuiteId and TimeStamp filled in unless given). */
  pushSuite(suiteId: string, fields: Record<string, string | number>): Promise<CallbackAnswer | undefined>
  /** The member's open_userid for this provider, as service/miniprogram/jscode2session answers it. */
  openUserid(corpId: string, userid: string): string
  /** The corp's permanent code for the suite, while it is installed: for tests that look for it where it must not be. */
  permanentCode(corpId: string, options?: { suiteId?: string }): string | undefined
  /** Moves the simulator clock forward, for code and token expiry. */
  advance(ms: number): void
  /** Closes the server and every socket, including requests held by a timeout fault. */
  close(): Promise<void>
}

interface Parts {
  url: string
  clock: SimulatorClock
  timers: Timers
  directory: Directory
  credentials: Credentials
  web: WebLogins
  tickets: JsapiTickets
  callbacks: Callbacks
  suites: SuitePushes
  ticketSchedule: SuiteTicketSchedule
  installs: SuiteInstalls
  server: SimulatorServer
  messages: EndpointContext['messages']
}

export async function createWecomSimulator (
  options: WecomSimulatorOptions = {}
): Promise<WecomSimulator> {
  const clock = new SimulatorClock(options.now ?? Date.now)
  const timers = new Timers()
  const directory = new Directory()
  const codeTtl = nonNegative('codeTtl', options.codeTtl ?? 300)
  const credentials = new Credentials(clock, directory, options.tokenTtl ?? 7200, codeTtl)
  const web = new WebLogins(clock, directory, codeTtl * 1000)
  const tickets = new JsapiTickets(clock)
  const callbacks = new Callbacks(directory, clock, timers, nonNegative('callbackRetryDelay', options.callbackRetryDelay ?? 5000))
  const messages: EndpointContext['messages'] = []
  const suites = new SuitePushes(options.provider?.corpId ?? '', options.suites ?? [], clock, callbacks.signal)
  const ticketSchedule = new SuiteTicketSchedule(suites, clock, timers, nonNegative('suiteTicketEvery', options.suiteTicketEvery ?? 0) * 1000)
  const installs = new SuiteInstalls(clock, options.provider?.corpId ?? '', directory)
  const server = new SimulatorServer({ directory, credentials, web, tickets, suites, suiteTokens: new SuiteTokens(clock), installs, messages }, timers, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    latency: options.latency ?? 0,
    fallback: options.fallback,
  })
  for (const corp of options.corps ?? []) directory.add(corp)
  const url = await server.listen()
  return simulator({ url, clock, timers, directory, credentials, web, tickets, callbacks, suites, ticketSchedule, installs, server, messages })
}

/** The public face of the parts: a plain object, so that its methods work detached too. */
function simulator ({ url, clock, timers, directory, credentials, web, tickets, callbacks, suites, ticketSchedule, installs, server, messages }: Parts): WecomSimulator {
  /**
   * A contact event to the corp's own callback and, as WeCom's 数据回调 does, to each suite the corp
   * installed (its own AgentID there): the corp callback's delivery, once each suite answered.
   */
  const toEveryone = async (corpId: string, fields: Record<string, string | number>): Promise<SimulatedDelivery | undefined> => {
    const [delivery] = await Promise.all([
      callbacks.deliver(corpId, fields),
      ...installs.ofCorp(corpId).map((install) => suites.event(install.suiteId, corpId, install.agentId, fields))
    ])
    return delivery
  }
  return {
    url,
    authorizeUrl: `${url}${AUTHORIZE_PATH}`,
    ssoUrl: `${url}${SSO_PATH}`,
    calls: server.calls,
    resetCalls: () => server.resetCalls(),
    get requests () { return server.requests() },
    addCorp: (corp) => directory.add(corp),
    setMember: (corpId, member) => directory.set(corpId, member),
    members: (corpId) => directory.members(corpId),
    updateMember: (corpId, userid, patch) => directory.update(corpId, userid, patch),
    removeMember (corpId, userid) {
      directory.remove(corpId, userid)
      return toEveryone(corpId, { Event: 'change_contact', ChangeType: 'delete_user', UserID: userid })
    },
    disableMember (corpId, userid) {
      directory.update(corpId, userid, { status: 2 })
      return toEveryone(corpId, { Event: 'change_contact', ChangeType: 'update_user', UserID: userid, Status: 2 })
    },
    setVisible (corpId, userid, visible) {
      directory.update(corpId, userid, { visible })
      // 成员关注及取消关注事件: sent by the member, to the app.
      const event = visible ? 'subscribe' : 'unsubscribe'
      return toEveryone(corpId, { FromUserName: userid, Event: event, AgentID: directory.corp(corpId).agentId })
    },
    setCallback: (corpId, callback) => callbacks.save(corpId, callback),
    async sendEvent (corpId, fields) {
      const delivery = await callbacks.deliver(corpId, fields)
      if (delivery === undefined) throw new Error(`WeCom simulator: corp ${JSON.stringify(corpId)} has no callback`)
      return delivery
    },
    get deliveries () { return callbacks.deliveries.slice() },
    redeliver: (delivery, envelope) => callbacks.redeliver(delivery, envelope),
    async connectSuites (url) {
      await suites.connect(url)
      ticketSchedule.start(suites.ids())
    },
    pushSuiteTicket: (suiteId, options) => suites.pushTicket(suiteId, options),
    suiteTickets: (suiteId) => suites.ticketsOf(suiteId),
    planSuiteTickets: (fates, { suiteId = onlySuite(suites) } = {}) => ticketSchedule.plan(suiteId, fates),
    install (corpId, { suiteId = onlySuite(suites) } = {}) {
      return suites.push(suiteId, { InfoType: 'create_auth', AuthCode: installs.install(suiteId, corpId) })
    },
    uninstall (corpId, { suiteId = onlySuite(suites) } = {}) {
      credentials.endApp(corpId, installs.uninstall(suiteId, corpId), 40014)
      return suites.push(suiteId, { InfoType: 'cancel_auth', AuthCorpId: corpId })
    },
    resetPermanentCode (corpId, { suiteId = onlySuite(suites) } = {}) {
      if (installs.of(suiteId, corpId) === undefined) throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has not installed suite ${JSON.stringify(suiteId)}`)
      return suites.push(suiteId, { InfoType: 'reset_permanent_code', AuthCode: installs.install(suiteId, corpId) })
    },
    pushSuite: (suiteId, fields) => suites.push(suiteId, fields),
    openUserid: (corpId, userid) => installs.openUserid(corpId, userid),
    permanentCode: (corpId, { suiteId = onlySuite(suites) } = {}) => installs.of(suiteId, corpId)?.permanentCode,
    get messages () { return messages.slice() },
    issueCode: (corpId, userid) => credentials.issueCode(corpId, userid),
    issueWebCode (corpId, visitor, { agentId, scope = 'snsapi_base', suiteId } = {}) {
      if (suiteId !== undefined && suites.suite(suiteId) === undefined) throw new SimulatorNotFoundError(`unknown suite ${JSON.stringify(suiteId)}`)
      // A 代开发 install's app counts as the corp's own, as on its pages.
      if (suiteId === undefined && agentId !== undefined && installs.byAgent(corpId, agentId) === undefined) directory.agent(corpId, agentId)
      return web.issueCode({ corpId, agentId: suiteId === undefined ? agentId : undefined, visitor, scope, suiteId })
    },
    jsapiTicket (corpId) {
      directory.corp(corpId)
      return tickets.liveCorpTicket(corpId)
    },
    agentTicket (corpId, agentId) {
      directory.agent(corpId, agentId)
      return tickets.liveAppTicket(corpId, agentId)
    },
    sessionKey: (corpId, userid) => directory.find(corpId)?.sessionKeys.get(userid),
    encryptUserInfo (corpId, userid, data, appid) {
      directory.member(corpId, userid)
      const sessionKey = directory.corp(corpId).sessionKeys.get(userid)
      if (sessionKey === undefined) {
        throw new SimulatorNotFoundError(`member ${JSON.stringify(userid)} has no session_key yet; call issueCode first`)
      }
      // The watermark follows the simulator clock, so advance() ages it like everything else.
      return sealUserInfo(sessionKey, data, appid, randomBytes(16), clock.now())
    },
    setTokenTtl: (seconds) => credentials.setTokenTtl(seconds),
    expireTokens: (corpId, errcode = 42001) => credentials.expire(corpId, errcode),
    setLatency: (ms) => server.setLatency(ms),
    inject: (endpoint, fault, times = 1) => server.inject(endpoint, fault, times),
    mixFaults: (endpoint, mix) => server.mixFaults(endpoint, mix),
    get faultsMet () { return server.faultsMet },
    clearFaults: () => server.clearFaults(),
    advance: (ms) => clock.advance(ms),
    close () {
      callbacks.abort()
      timers.clear()
      return server.close()
    },
  }
}

/** The suite a call names, or the only one there is. */
function onlySuite (suites: SuitePushes): string {
  const only = suites.only()
  if (only === undefined) throw new SimulatorNotFoundError('name the suite: the simulator has none, or several')
  return only
}
