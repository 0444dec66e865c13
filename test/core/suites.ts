import t from 'tap'
import { callbackRequest } from '../../src/testing/envelope.js'
import { setup } from '../helpers/setup.js'
import { now, OTHER, PROVIDER, push, SEAL_KEYS, SUITE, suiteOptions, ticketPush, type TestSuite } from '../helpers/suites.js'

// A service provider's suites (issue 19): the options, and the suite's command callback: the URL
// check for the provider's CorpID, suite_ticket pushes for the SuiteId, the newest kept.

t.test('suites need the provider\'s CorpID and seal keys; each option is checked, naming the bad one', async (t) => {
  const h = await setup(t)
  const boot = async (options: object) => {
    const { default: Fastify } = await import('fastify')
    const { default: plugin } = await import('../../src/index.js')
    const app = Fastify()
    try {
      await app.register(plugin, { corps: [{ corpId: 'wwcorp', secret: 's' }], jwt: { secret: 'a-jwt-secret-of-at-least-32-characters!!' }, api: { baseUrl: h.sim.url }, ...options })
      await app.ready()
      return 'no error'
    } catch (error) {
      return (error as Error).message
    } finally {
      await app.close()
    }
  }
  t.equal(await boot(suiteOptions), 'no error')
  t.match(await boot({ suites: [SUITE], sealKeys: SEAL_KEYS }), /provider is required with suites/)
  t.match(await boot({ suites: [SUITE], provider: { corpId: PROVIDER } }), /sealKeys is required with suites/)
  t.match(await boot({ provider: { corpId: PROVIDER } }), /provider is for suites/)
  t.match(await boot({ sealKeys: SEAL_KEYS }), /sealKeys is for suites/)
  t.match(await boot({ ...suiteOptions, sealKeys: ['short'] }), /sealKeys\[0\] must be at least 32 characters/)
  t.match(await boot({ ...suiteOptions, sealKeys: [] }), /sealKeys must hold at least one key/)
  t.match(await boot({ ...suiteOptions, suites: [{ ...SUITE, kind: 'isv' }] }), /suites\[0\]\.kind must be 'third-party' or 'custom'/)
  t.match(await boot({ ...suiteOptions, suites: [SUITE, { ...OTHER, suiteId: SUITE.suiteId }] }), /suites\[1\]\.suiteId repeats/)
  t.match(await boot({ ...suiteOptions, suites: [{ ...SUITE, encodingAESKey: 'short' }] }), /suites\[0\]\.encodingAESKey must be the 43 characters/)
  t.match(await boot({ ...suiteOptions, suites: [{ ...SUITE, suiteSecret: 'x' }] }), /unknown option "suites\[0\]\.suiteSecret"/)
  t.match(await boot({ ...suiteOptions, provider: { corpId: ' wwprov ' } }), /provider\.corpId must be WeCom's id/)
  t.match(await boot({ ...suiteOptions, suites: [{ ...SUITE, suiteId: PROVIDER }] }), /suites\[0\]\.suiteId must differ from provider\.corpId/)
  const message = await boot({ ...suiteOptions, suites: [{ ...SUITE, kind: 'isv' }], sealKeys: ['short-but-secret'] })
  t.notMatch(message, SUITE.secret)
  t.notMatch(message, 'short-but-secret')
})

t.test('the URL check: echostr encrypted for the provider\'s CorpID, with a suite\'s Token', async (t) => {
  const h = await setup(t, suiteOptions)
  const check = (receiver: string, suite: TestSuite = SUITE) => {
    const { query } = callbackRequest(receiver, suite, 'echo-1234', { echostr: true }, now())
    return h.app.inject({ url: `/wecom/suite/callback?${query}` })
  }
  const ok = await check(PROVIDER)
  t.equal(ok.statusCode, 200)
  t.equal(ok.body, 'echo-1234')
  t.equal((await check(PROVIDER, OTHER)).body, 'echo-1234', 'the other suite\'s Token and key')
  t.equal((await check(SUITE.suiteId)).json().code, 'WECOM_CALLBACK_FORBIDDEN', 'encrypted for the SuiteId: not a URL check')
  t.equal((await check(PROVIDER, { ...SUITE, token: 'forged' })).json().code, 'WECOM_CALLBACK_FORBIDDEN', 'another Token')
})

t.test('suite_ticket pushes: the newest by TimeStamp is kept; late, repeated or reordered pushes never replace it', async (t) => {
  const h = await setup(t, suiteOptions)
  const kept = () => h.logs.records.filter((r) => /suite_ticket/.test(String(r.msg))).map((r) => r.kept)
  const send = async (request: ReturnType<typeof push>) => {
    const res = await h.app.inject(request)
    return res.statusCode === 200 ? res.body : res.json().code
  }
  // Fifteen minutes ago: WeCom's tickets live 30 minutes from their TimeStamp.
  const stamp = now() - 900
  t.equal(await send(ticketPush(SUITE, 'ticket-b', stamp)), 'success')
  t.equal(await send(ticketPush(SUITE, 'ticket-a', stamp - 300)), 'success', 'an older push, late: acknowledged')
  t.equal(await send(ticketPush(SUITE, 'ticket-b', stamp)), 'success', 'a push twice')
  t.equal(await send(ticketPush(SUITE, 'ticket-c', stamp + 600)), 'success')
  t.same(kept(), [true, false, true, true], 'the late one was not kept')
  t.equal(await send(ticketPush(OTHER, 'other-ticket', stamp - 600)), 'success', 'each suite its own: an old stamp of another suite is kept')
  t.same(kept().at(-1), true)
  // Found in review: a ticket past its 30 minutes was kept 30 more from its arrival, and one dated
  // ahead outranked every genuine push after it.
  t.equal(await send(ticketPush(SUITE, 'ticket-expired', now() - 1801)), 'success', 'a ticket past its 30 minutes: acknowledged')
  t.equal(h.logs.records.filter((r) => /suite_ticket/.test(String(r.msg))).at(-1)?.msg, 'wecom: suite_ticket past its 30 minutes; ignored')
  t.equal(await send(ticketPush(SUITE, 'ticket-ahead', now() + 1000)), 'WECOM_CALLBACK_FORBIDDEN', 'a ticket dated ahead')
  t.equal(kept().filter((one) => one === true).length, 4, 'neither was kept')

  // Refused with no effect.
  t.equal(await send(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'suite_ticket', TimeStamp: stamp + 1200, SuiteTicket: 'x' }, PROVIDER)), 'WECOM_CALLBACK_FORBIDDEN', 'a push encrypted for another receiver')
  t.equal(await send(push(SUITE, { SuiteId: OTHER.suiteId, InfoType: 'suite_ticket', TimeStamp: stamp + 1200, SuiteTicket: 'x' })), 'WECOM_CALLBACK_FORBIDDEN', 'a SuiteId that is not the receiver')
  t.equal(await send(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'suite_ticket', TimeStamp: 'soon', SuiteTicket: 'x' })), 'WECOM_CALLBACK_INVALID', 'no TimeStamp')
  t.equal(await send(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'suite_ticket', TimeStamp: stamp + 1200 })), 'WECOM_CALLBACK_INVALID', 'no SuiteTicket')
  t.equal(await send(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'suite_ticket', TimeStamp: stamp + 1200, SuiteTicket: 'x'.repeat(513) })), 'WECOM_CALLBACK_INVALID', 'a SuiteTicket over 512 bytes')
  t.equal(kept().length, 6, 'none of those was kept')

  // Not acted on yet: not acknowledged, so that WeCom resends it rather than it being lost.
  const install = await h.app.inject(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'change_external_contact', TimeStamp: stamp, AuthCorpId: 'auth-code-1' }))
  t.equal(install.statusCode, 503)
  t.equal(install.json().code, 'WECOM_CALLBACK_RETRY')
  t.match(install.json().message, 'change_external_contact')
  // What was decrypted is not written back, unless it is one of WeCom's own names.
  const odd = await h.app.inject(push(SUITE, { SuiteId: SUITE.suiteId, InfoType: 'DECRYPTED-TEXT', TimeStamp: stamp }))
  t.equal(odd.json().code, 'WECOM_CALLBACK_RETRY')
  t.notMatch(odd.body, 'DECRYPTED')

  const logged = h.logs.lines.join('\n')
  for (const secret of ['ticket-a', 'ticket-b', 'ticket-c', 'other-ticket', SUITE.secret, SUITE.encodingAESKey, 'auth-code-1']) {
    t.notMatch(logged, secret, 'no ticket, secret, key or auth code in a log line')
    t.notMatch(install.body, secret)
  }
})

t.test('the simulator as WeCom: the URL check of every suite, then suite_ticket pushes late, twice and out of order', async (t) => {
  const { createWecomSimulator } = await import('../../src/testing/simulator.js')
  const sim = await createWecomSimulator({ provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  t.teardown(() => sim.close())
  const h = await setup(t, suiteOptions)
  const base = await h.app.listen({ port: 0, host: '127.0.0.1' })
  await sim.connectSuites(`${base}/wecom/suite/callback`)
  const kept = () => h.logs.records.filter((r) => /suite_ticket/.test(String(r.msg))).map((r) => r.kept)

  const first = await sim.pushSuiteTicket(SUITE.suiteId, { timestamp: now() - 600 })
  t.same(first.answer, { status: 200, body: 'success' })
  const newer = await sim.pushSuiteTicket(SUITE.suiteId)
  await sim.pushSuiteTicket(SUITE.suiteId, { ticket: first.ticket, timestamp: first.timestamp })
  await sim.pushSuiteTicket(SUITE.suiteId, { ticket: newer.ticket, timestamp: newer.timestamp })
  t.same(kept(), [true, true, false, true], 'the late one not kept; the repeat of the newest kept')
  t.equal(sim.suiteTickets(SUITE.suiteId).length, 4)
  await t.rejects(sim.pushSuiteTicket('wwnosuch'), { code: 'SIMULATOR_NOT_FOUND' })

  // A URL where the check fails: no suite is connected.
  await t.rejects(sim.connectSuites(`${base}/wecom/nowhere`), /failed WeCom's check/)
  const elsewhere = await createWecomSimulator({ provider: { corpId: 'wwanotherprovider' }, suites: [SUITE] })
  t.teardown(() => elsewhere.close())
  await t.rejects(elsewhere.connectSuites(`${base}/wecom/suite/callback`), /failed WeCom's check \(HTTP 403\)/, 'checked for another provider\'s CorpID')
})

t.test('the suite token: none without a suite_ticket (said once), then get_suite_token with the newest, once for many callers', async (t) => {
  const { createWecomSimulator } = await import('../../src/testing/simulator.js')
  const { WecomClient } = await import('../../src/wecom/client.js')
  const { withDeadline } = await import('../../src/wecom/deadline.js')
  const sim = await createWecomSimulator({ provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  t.teardown(() => sim.close())
  const h = await setup(t, suiteOptions)
  await sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)

  const warnings: string[] = []
  const log = { debug () {}, info () {}, warn (_fields: object, message: string) { warnings.push(message) }, error () {} }
  // What the plugin's store keeps is checked above; here, the ticket WeCom pushed last.
  const client = new WecomClient({
    baseUrl: sim.url,
    timeout: 10_000,
    breaker: false,
    refusals: { config: 60_000, frequency: 60_000, concurrency: 5000 },
    budget: false,
    clientShare: 1,
    log,
    suiteTicketOf: async (suiteId) => sim.suiteTickets(suiteId).at(-1)?.ticket ?? null
  })
  t.teardown(() => client.close())
  // 10 s: what is checked is which calls WeCom saw, not how fast, on a loaded machine.
  const suiteToken = () => withDeadline(10_000, (deadline) => client.suiteToken({ corpId: SUITE.suiteId, secret: SUITE.secret }, deadline))

  for (let i = 0; i < 3; i++) t.match(await suiteToken().catch((error: unknown) => error), { reason: 'no-ticket' })
  t.equal(warnings.filter((line) => /no suite_ticket/.test(line)).length, 1, 'said once, naming the fix')
  t.match(warnings[0], /push it again from the provider's admin console/)
  t.equal(sim.calls['service/get_suite_token'], 0, 'WeCom was not asked without a ticket')

  await sim.pushSuiteTicket(SUITE.suiteId)
  const tokens = await Promise.all(Array.from({ length: 100 }, suiteToken))
  t.equal(new Set(tokens).size, 1)
  t.equal(sim.calls['service/get_suite_token'], 1, '100 callers, one get_suite_token')

  // The simulator refuses what WeCom refuses: a wrong secret, an unknown ticket.
  const wrong = await (await fetch(`${sim.url}/cgi-bin/service/get_suite_token`, { method: 'POST', body: JSON.stringify({ suite_id: SUITE.suiteId, suite_secret: 'nope', suite_ticket: sim.suiteTickets(SUITE.suiteId)[0]!.ticket }) })).json()
  t.match(wrong, { errcode: 40001 })
  const stale = await (await fetch(`${sim.url}/cgi-bin/service/get_suite_token`, { method: 'POST', body: JSON.stringify({ suite_id: SUITE.suiteId, suite_secret: SUITE.secret, suite_ticket: 'never-pushed' }) })).json()
  t.match(stale, { errcode: 40085 })
  // Tickets age by the clock advance() moves: the first is stale after 30 minutes, one pushed then is good.
  const ask = async (ticket: string) => (await (await fetch(`${sim.url}/cgi-bin/service/get_suite_token`, { method: 'POST', body: JSON.stringify({ suite_id: SUITE.suiteId, suite_secret: SUITE.secret, suite_ticket: ticket }) })).json()).errcode
  sim.advance(31 * 60 * 1000)
  t.equal(await ask(sim.suiteTickets(SUITE.suiteId)[0]!.ticket), 40085, 'a ticket of 31 minutes ago')
  await sim.pushSuiteTicket(SUITE.suiteId)
  t.equal(await ask(sim.suiteTickets(SUITE.suiteId).at(-1)!.ticket), 0, 'the ticket pushed after advance()')
  for (const secret of [SUITE.secret, sim.suiteTickets(SUITE.suiteId)[0]!.ticket, tokens[0]!]) {
    t.notMatch(warnings.join('\n'), secret, 'no secret, ticket or token in what was said')
  }
})
