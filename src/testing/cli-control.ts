/**
 * The command-line simulator's /sim/ routes (cli.ts): over HTTP, what a test does to the simulator
 * in code. Each reads its parameters from the query string and answers JSON (200), nothing (204),
 * or `{ "error" }`: 400 for a bad request, 404 for a corp, member or suite the simulator does not
 * have, 409 for a suite push before the suites' callback URL is connected, 502 for a callback URL
 * that fails WeCom's check.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ENDPOINTS } from './endpoints.js'
import {
  isAcknowledged,
  isSimulatorNotFound,
  type CallbackAnswer,
  type SimulatedDelivery,
  type SimulatedFault,
  type SuiteTicketFate,
  type WecomEndpoint,
  type WecomSimulator
} from './simulator.js'
import { SUITE_TICKET_FATES } from './suite-ticket-schedule.js'

type Routes = Record<string, (query: URLSearchParams) => unknown>

/** A request the caller got wrong, answered with `status` and the message. */
class ControlError extends Error {
  constructor (readonly status: number, message: string) {
    super(message)
  }
}

const ENDPOINT_NAMES: ReadonlySet<string> = new Set(Object.keys(ENDPOINTS))
/**
 * Query parameters that are credentials, by name: corpsecret, access_token, js_code, code, and the
 * service endpoints' suite_access_token (with suite_secret, suite_ticket, auth_code and
 * permanent_code, should a client put them in the query rather than the body). Masked in
 * /sim/requests, as they never appear in a log.
 */
const SECRET_PARAM = /secret|token|ticket|code|key/i
/** The longest `age` of a late suite_ticket push, in seconds: a day, well past a ticket's 30 minutes. */
const MAX_TICKET_AGE_S = 86_400

function need (query: URLSearchParams, name: string): string {
  const value = query.get(name)
  if (value === null || value === '') throw new ControlError(400, `${name} is required`)
  return value
}

/** A whole number of the query from 0 to `max`; `unit` names it in the refusal. */
function whole (query: URLSearchParams, name: string, max: number, unit: string): number {
  const value = Number(need(query, name))
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ControlError(400, `${name} must be an integer of ${unit}, 0 to ${max}`)
  return value
}

const milliseconds = (query: URLSearchParams, name: string): number => whole(query, name, 600_000, 'milliseconds')

function faultOf (query: URLSearchParams): SimulatedFault {
  if (query.has('errcode')) {
    const errcode = Number(query.get('errcode'))
    if (!Number.isInteger(errcode)) throw new ControlError(400, 'errcode must be an integer')
    return { errcode }
  }
  if (query.get('timeout') === '1') return { timeout: true }
  if (query.get('drop') === '1') return { drop: true }
  if (query.get('malformed') === '1') return { malformed: true }
  if (query.has('delay')) return { delay: milliseconds(query, 'delay') }
  if (query.has('trickle')) return { trickle: milliseconds(query, 'trickle') }
  throw new ControlError(400, 'name the fault: errcode=N, timeout=1, drop=1, malformed=1, delay=MS or trickle=MS')
}

function deliveryOf (delivery: SimulatedDelivery | undefined): unknown {
  return delivery === undefined ? { event: null } : { event: delivery.event, acknowledged: delivery.acknowledged }
}

/** What a suite's callback answered a push: acknowledged when it said `success`; status null when no answer came. */
function answered (answer: CallbackAnswer | undefined): { acknowledged: boolean, status: number | null } {
  return { acknowledged: isAcknowledged(answer), status: answer?.status ?? null }
}

/** The corps' routes: codes, faults, tokens, latency, off-boarding, the request log. */
function corpRoutes (sim: WecomSimulator, defaultCorp: string): Routes {
  const corpOf = (query: URLSearchParams) => query.get('corpid') || defaultCorp
  return {
    'POST /sim/code': (query) => ({ code: sim.issueCode(corpOf(query), need(query, 'userid')) }),
    'POST /sim/fault': (query) => {
      const endpoint = need(query, 'endpoint')
      if (!ENDPOINT_NAMES.has(endpoint)) throw new ControlError(400, `endpoint must be one of ${[...ENDPOINT_NAMES].join(', ')}`)
      const times = query.has('times') ? Number(query.get('times')) : 1
      if (!Number.isInteger(times) || times < 1) throw new ControlError(400, 'times must be a positive integer')
      sim.inject(endpoint as WecomEndpoint, faultOf(query), times)
      return undefined
    },
    'DELETE /sim/faults': () => sim.clearFaults(),
    'POST /sim/expire-tokens': (query) => {
      const errcode = query.has('errcode') ? Number(query.get('errcode')) : 42001
      if (errcode !== 42001 && errcode !== 40014) throw new ControlError(400, 'errcode must be 42001 or 40014')
      sim.expireTokens(query.get('corpid') ?? undefined, errcode)
    },
    'POST /sim/latency': (query) => sim.setLatency(milliseconds(query, 'ms')),
    'POST /sim/remove': async (query) => deliveryOf(await sim.removeMember(corpOf(query), need(query, 'userid'))),
    'POST /sim/disable': async (query) => deliveryOf(await sim.disableMember(corpOf(query), need(query, 'userid'))),
    'POST /sim/visible': async (query) => {
      const visible = need(query, 'visible')
      if (visible !== '0' && visible !== '1') throw new ControlError(400, 'visible must be 0 or 1')
      return deliveryOf(await sim.setVisible(corpOf(query), need(query, 'userid'), visible === '1'))
    },
    'GET /sim/requests': () => sim.requests.map(({ endpoint, query }) => ({
      endpoint,
      query: Object.fromEntries(Object.entries(query).map(([name, value]) => [name, SECRET_PARAM.test(name) ? '***' : value]))
    }))
  }
}

/**
 * The service provider's routes: the suites' callback URL, their suite_ticket pushes (now, late,
 * again, or as planned fates of the timed ones), and installs. No answer carries a ticket or a
 * permanent code: the callback has them, as from WeCom.
 */
function suiteRoutes (sim: WecomSimulator, suiteIds: readonly string[]): { routes: Routes, connect: (url: string) => Promise<void> } {
  let connected = false
  const suiteOf = (query: URLSearchParams): string => {
    const named = query.get('suiteid')
    if (named) return named
    if (suiteIds.length === 1) return suiteIds[0]!
    throw new ControlError(400, suiteIds.length === 0 ? 'the simulator has no suites (see --members)' : `suiteid is required: one of ${suiteIds.join(', ')}`)
  }
  // The simulator would keep an install whose push it cannot send; WeCom's console asks for the URL first.
  const pushing = (query: URLSearchParams): string => {
    if (!connected) throw new ControlError(409, 'the suites have no callback URL yet: POST /sim/connect-suites?url=URL first')
    return suiteOf(query)
  }
  const connect = async (url: string): Promise<void> => {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new ControlError(400, 'url must be an http(s) URL')
    await sim.connectSuites(url).catch((error: Error) => { throw new ControlError(502, error.message) })
    connected = true
  }
  const lastTicket = (suiteId: string) => {
    const last = sim.suiteTickets(suiteId).at(-1)
    if (last === undefined) throw new ControlError(409, `no suite_ticket pushed to ${suiteId} yet to push again`)
    return { ticket: last.ticket, timestamp: last.timestamp }
  }
  const fatesOf = (query: URLSearchParams): SuiteTicketFate[] => need(query, 'fates').split(',').map((fate) => {
    if (!(SUITE_TICKET_FATES as readonly string[]).includes(fate)) throw new ControlError(400, `fates: each one of ${SUITE_TICKET_FATES.join(', ')}, comma-separated`)
    return fate as SuiteTicketFate
  })
  const routes: Routes = {
    'POST /sim/connect-suites': (query) => connect(need(query, 'url')),
    'POST /sim/suite-ticket': async (query) => {
      const suiteId = pushing(query)
      const dated = query.get('again') === '1'
        ? lastTicket(suiteId)
        : query.has('age') ? { timestamp: Math.floor(Date.now() / 1000) - whole(query, 'age', MAX_TICKET_AGE_S, 'seconds') } : {}
      const push = await sim.pushSuiteTicket(suiteId, dated)
      return { timestamp: push.timestamp, ...answered(push.answer) }
    },
    'GET /sim/suite-tickets': (query) => sim.suiteTickets(suiteOf(query)).map(({ timestamp, answer }) => ({ timestamp, ...answered(answer) })),
    'POST /sim/suite-ticket-plan': (query) => sim.planSuiteTickets(fatesOf(query), { suiteId: suiteOf(query) }),
    'POST /sim/install': async (query) => ({ pushed: 'create_auth', ...answered(await sim.install(need(query, 'corpid'), { suiteId: pushing(query) })) }),
    'POST /sim/uninstall': async (query) => ({ pushed: 'cancel_auth', ...answered(await sim.uninstall(need(query, 'corpid'), { suiteId: pushing(query) })) }),
    'POST /sim/reset-permanent-code': async (query) =>
      ({ pushed: 'reset_permanent_code', ...answered(await sim.resetPermanentCode(need(query, 'corpid'), { suiteId: pushing(query) })) })
  }
  return { routes, connect }
}

export interface Control {
  /** The simulator's fallback: answers a /sim/ route, 404 for any other path. */
  handle (req: IncomingMessage, res: ServerResponse): void
  /**
   * Connects the suites' command callback URL as POST /sim/connect-suites does; rejects with the
   * reason (a message naming the suite, never a secret) if WeCom's check fails there.
   */
  connectSuites (url: string): Promise<void>
}

/**
 * The /sim/ routes of `sim`. `defaultCorp`: the corp a corp route acts on when the query names
 * none; `suiteIds`: the simulator's suites, the only one being the default of a suite route.
 */
export function createControl (sim: WecomSimulator, { defaultCorp, suiteIds }: { defaultCorp: string, suiteIds: readonly string[] }): Control {
  const suites = suiteRoutes(sim, suiteIds)
  const routes: Routes = { ...corpRoutes(sim, defaultCorp), ...suites.routes }
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://simulator')
    const route = routes[`${req.method} ${url.pathname}`]
    const reply = (status: number, body?: unknown) => {
      if (body === undefined) {
        res.writeHead(status).end()
        return
      }
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
    }
    if (route === undefined) {
      reply(404, { error: `no route ${req.method} ${url.pathname}; see --help` })
      return
    }
    Promise.resolve().then(() => route(url.searchParams)).then(
      (body) => reply(body === undefined ? 204 : 200, body),
      (error: Error) => {
        // A corp, member or suite the simulator does not have: the caller named one.
        const status = error instanceof ControlError ? error.status : isSimulatorNotFound(error) ? 404 : 500
        reply(status, { error: error.message })
      }
    )
  }
  return { handle, connectSuites: suites.connect }
}
