import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { MockAgent } from 'undici'
import { Admission, type WecomLogger } from '../../src/wecom/admission.js'
import { WecomClient } from '../../src/wecom/client.js'
import { CredentialCache, TokenCache, credentialKey, tokenKey, type TicketKind } from '../../src/wecom/credentials.js'
import { Deadline, withDeadline } from '../../src/wecom/deadline.js'
import { apiEndpoint, getAgentTicket, getJsapiTicket } from '../../src/wecom/endpoints.js'
import { WecomFailFastError } from '../../src/wecom/failures.js'
import { FakeShared } from '../helpers/shared-tokens.js'

const app = { corpId: 'ww1', secret: 'web-app-secret' }
const quiet: WecomLogger = { debug () {}, info () {}, warn () {}, error () {} }
const BASE = 'http://wecom.test'

/** Fetches tickets `kind-1`, `kind-2`, ... after a turn of the event loop, counting them. */
function fakeFetch (kind: string, expiresIn = 7200) {
  const counted = { calls: 0 }
  const fetch = async () => {
    const issued = ++counted.calls
    await new Promise((resolve) => setImmediate(resolve))
    return { value: `${kind}-${issued}`, expiresIn }
  }
  return Object.assign(counted, { fetch })
}

t.test('a ticket cache: 1,000 concurrent asks on a cold start, one fetch', async (t) => {
  const wecom = fakeFetch('jsapi')
  const cache = new CredentialCache({ kind: 'jsapi_ticket', fetch: wecom.fetch })
  const tickets = await Promise.all(Array.from({ length: 1000 }, () => cache.get(app)))
  t.same(new Set(tickets), new Set(['jsapi-1']))
  t.equal(wecom.calls, 1)
})

t.test('a ticket cache: refreshed once ahead of expiry, in the background', async (t) => {
  const wecom = fakeFetch('agent')
  let now = 0
  const cache = new CredentialCache({ kind: 'agent_ticket', fetch: wecom.fetch, now: () => now })
  t.equal(await cache.get(app), 'agent-1')
  now = 7_200_000 - 200_000
  t.equal(await cache.get(app), 'agent-1', 'ahead of expiry: still served')
  t.equal(await cache.get(app), 'agent-1')
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(wecom.calls, 2, 'one background refresh')
  t.equal(await cache.get(app), 'agent-2')
})

t.test('tickets are shared across instances on one shared store, under keys no access token has', async (t) => {
  const shared = new FakeShared()
  const token = fakeFetch('token')
  const kinds: TicketKind[] = ['jsapi_ticket', 'agent_ticket']
  const instance = () => ({
    token: new TokenCache({ fetch: async (corp) => { const { value, expiresIn } = await token.fetch(); return { accessToken: value, expiresIn } }, shared }),
    tickets: kinds.map((kind) => new CredentialCache({ kind, fetch: fetches[kind].fetch, shared }))
  })
  const fetches = { jsapi_ticket: fakeFetch('jsapi'), agent_ticket: fakeFetch('agent') }
  const [a, b] = [instance(), instance()]
  t.same(await Promise.all([a.token.get(app), ...a.tickets.map((cache) => cache.get(app))]), ['token-1', 'jsapi-1', 'agent-1'])
  t.same(await Promise.all([b.token.get(app), ...b.tickets.map((cache) => cache.get(app))]), ['token-1', 'jsapi-1', 'agent-1'], 'B read what A fetched')
  t.same([token.calls, fetches.jsapi_ticket.calls, fetches.agent_ticket.calls], [1, 1, 1])
  t.same([...shared.values.keys()].sort(), [tokenKey(app), credentialKey(app, 'agent_ticket'), credentialKey(app, 'jsapi_ticket')].sort())
  t.equal(new Set(shared.values.keys()).size, 3, 'three keys, three values')
  for (const kind of kinds) {
    t.notMatch(credentialKey(app, kind), /:[0-9a-f]{16}$/, `${kind}: not the shape of a token key, whatever the corpId`)
    t.not(credentialKey(app, kind), tokenKey({ corpId: `${tokenKey(app)}`, secret: kind }))
  }
})

const windows = { config: 60_000, frequency: 60_000, concurrency: 5000 }

t.test('the hourly caps: half of WeCom\'s limits per app and per corp, refused here as budget', async (t) => {
  const admission = new Admission({ breaker: false, refusals: windows, budget: false, clientShare: 1, log: quiet, telemetry: { breakerChanged () {} } })
  const deadline = new Deadline(60_000)
  t.teardown(() => deadline.clear())
  const scope = (n: number) => ({ deadline, corpId: 'ww1', app: `ww1:app${n}` })
  const admits = async (spec: typeof getJsapiTicket, n: number, times: number) => {
    let admitted = 0
    for (let i = 0; i < times; i++) {
      if (await admission.admit(spec, scope(n)).then(() => true, (error: unknown) => { if (!(error instanceof WecomFailFastError)) throw error; return false })) admitted++
    }
    return admitted
  }
  t.equal(await admits(getJsapiTicket, 1, 60), 50, 'the corp ticket: 50 of WeCom\'s 100 an hour per app; the 10 refused spend none of the corp\'s')
  t.equal(await admits(getAgentTicket, 1, 60), 50, 'the app ticket counts apart: 50 of WeCom\'s 100 an hour per app')
  for (const n of [2, 3, 4]) t.equal(await admits(getJsapiTicket, n, 50), 50)
  t.equal(await admits(getJsapiTicket, 5, 1), 0, 'the corp\'s 200 of WeCom\'s 400 an hour spent: a fifth app waits')
  const error = await admission.admit(getJsapiTicket, scope(1)).catch((e: unknown) => e)
  t.match(error, WecomFailFastError)
  t.equal((error as WecomFailFastError).reason, 'budget')
  t.ok((error as WecomFailFastError).retryAfter > 0 && (error as WecomFailFastError).retryAfter <= 3_600_000 / 50, 'until the cap refills one call')
  t.match((() => { try { admission.check([getJsapiTicket], scope(2), 0) } catch (e) { return e } })(), { reason: 'budget' }, 'a precheck sees the cap too')
})

t.test('the host\'s api() calls of a capped endpoint count against the same hourly caps', async (t) => {
  const admission = new Admission({ breaker: false, refusals: windows, budget: false, clientShare: 1, log: quiet, telemetry: { breakerChanged () {} } })
  const deadline = new Deadline(60_000)
  t.teardown(() => deadline.clear())
  const scope = { deadline, corpId: 'ww1', app: 'ww1:app' }
  const viaApi = apiEndpoint(getJsapiTicket.path, 'GET')!
  const admitted = async (spec: Parameters<Admission['admit']>[0], times: number) => {
    let count = 0
    for (let i = 0; i < times; i++) if (await admission.admit(spec, scope).then(() => true, () => false)) count++
    return count
  }
  t.equal(await admitted(viaApi, 30), 30)
  t.equal(await admitted(getJsapiTicket, 30), 20, 'the plugin\'s own fetches get what api() left of the 50')
  t.equal(await admitted(viaApi, 1), 0)
})

/** WeCom behind an undici MockAgent: gettoken and the two tickets, counted; `ticketAnswer` what a ticket call answers. */
function mockWecom (t: Test, ticketAnswer: (path: string) => object = (path) => ({ errcode: 0, ticket: `ticket-of-${path.split('?')[0]}`, expires_in: 7200 })) {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const calls = { gettoken: 0, jsapi: 0, agent: 0, agentQueries: new Set<string>() }
  const pool = agent.get(BASE)
  pool.intercept({ path: (path) => path.startsWith('/cgi-bin/gettoken?') }).reply(200, () => { calls.gettoken++; return { errcode: 0, access_token: 'T', expires_in: 7200 } }).delay(5).persist()
  pool.intercept({ path: (path) => path.startsWith('/cgi-bin/get_jsapi_ticket?') }).reply(200, ({ path }) => { calls.jsapi++; return ticketAnswer(path) }).delay(5).persist()
  pool.intercept({ path: (path) => path.startsWith('/cgi-bin/ticket/get?') }).reply(200, ({ path }) => {
    calls.agent++
    calls.agentQueries.add(new URL(path, BASE).searchParams.get('type') ?? '')
    return ticketAnswer(path)
  }).delay(5).persist()
  const client = (shared?: FakeShared) => {
    const made = new WecomClient({ baseUrl: BASE, timeout: 10_000, dispatcher: agent, breaker: false, refusals: windows, budget: false, clientShare: 1, log: quiet, shared })
    t.teardown(() => made.close())
    return made
  }
  return { calls, client }
}

// Bounds are 10 s: what is checked is how many calls WeCom saw, not how fast, on a loaded machine.
const ask = (client: WecomClient, what: 'jsapiTicket' | 'agentTicket') => withDeadline(10_000, (deadline) => client[what](app, deadline))

t.test('WecomClient: 1,000 concurrent asks of each ticket on a cold start, one call per ticket and one gettoken', async (t) => {
  const wecom = mockWecom(t)
  const client = wecom.client()
  const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => ask(client, i % 2 === 0 ? 'jsapiTicket' : 'agentTicket')))
  t.same(new Set(answers), new Set(['ticket-of-/cgi-bin/get_jsapi_ticket', 'ticket-of-/cgi-bin/ticket/get']))
  t.same([wecom.calls.gettoken, wecom.calls.jsapi, wecom.calls.agent], [1, 1, 1])
  t.same([...wecom.calls.agentQueries], ['agent_config'])
})

t.test('WecomClient: two instances on one shared store fetch each ticket once', async (t) => {
  const wecom = mockWecom(t)
  const shared = new FakeShared()
  const [a, b] = [wecom.client(shared), wecom.client(shared)]
  t.equal(await ask(a, 'jsapiTicket'), 'ticket-of-/cgi-bin/get_jsapi_ticket')
  t.equal(await ask(b, 'jsapiTicket'), 'ticket-of-/cgi-bin/get_jsapi_ticket')
  t.equal(await ask(b, 'agentTicket'), 'ticket-of-/cgi-bin/ticket/get')
  t.equal(await ask(a, 'agentTicket'), 'ticket-of-/cgi-bin/ticket/get')
  t.same([wecom.calls.gettoken, wecom.calls.jsapi, wecom.calls.agent], [1, 1, 1])
})

t.test('WecomClient: a storm of cache misses stops at the hourly cap, short of WeCom\'s limit', async (t) => {
  // A ticket that lives a millisecond, asked for 2 ms (or more) apart: every ask is a miss that calls WeCom.
  const wecom = mockWecom(t, () => ({ errcode: 0, ticket: 'short-lived', expires_in: 0.001 }))
  const client = wecom.client()
  const outcomes: string[] = []
  for (let i = 0; i < 120; i++) {
    await sleep(2)
    outcomes.push(await ask(client, 'jsapiTicket').then(() => 'ticket', (error: Error) => error instanceof WecomFailFastError ? error.reason : error.name))
  }
  t.equal(wecom.calls.jsapi, 50, 'half of WeCom\'s 100 an hour per app, and no more')
  t.same(new Set(outcomes.slice(0, 50)), new Set(['ticket']), 'each answered')
  t.same(new Set(outcomes.slice(50)), new Set(['budget']), 'then refused here, with a Retry-After')
})

t.test('WecomClient: a ticket WeCom will not give is not asked for again at once, so no page rate spends the hourly cap', async (t) => {
  const cases = [
    // What WeCom answers, how many calls the first ask makes, and what answers the asks after it.
    { what: '-1', answer: { errcode: -1, errmsg: 'system busy' }, first: 2, reason: 'backoff' },
    { what: 'a malformed answer', answer: { errcode: 0 }, first: 1, reason: 'backoff' },
    { what: '40014 even on a fresh token', answer: { errcode: 40014 }, first: 2, reason: 'backoff' },
    { what: '48002', answer: { errcode: 48002 }, first: 1, reason: 'refused' }
  ]
  for (const { what, answer, first, reason } of cases) {
    const wecom = mockWecom(t, () => answer)
    const client = wecom.client()
    const outcomes: string[] = []
    for (let i = 0; i < 20; i++) {
      outcomes.push(await ask(client, 'jsapiTicket').then(() => 'ticket', (error: Error) => error instanceof WecomFailFastError ? error.reason : error.name))
    }
    // The first back-off is a second; twenty asks in a row take milliseconds. Twice the first
    // ask's calls at most, for a machine so loaded that they took longer.
    t.ok(wecom.calls.jsapi >= first && wecom.calls.jsapi <= 2 * first, `${what}: ${wecom.calls.jsapi} call(s) for 20 asks`)
    t.same(new Set(outcomes.slice(1)), new Set([reason]), `${what}: each ask after the first answered at once (${reason}), with its Retry-After`)
  }
})
