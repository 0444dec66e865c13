import t from 'tap'
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint } from '@opentelemetry/sdk-metrics'
import { assertNoSecretsIn, seenAccessTokens } from './helpers/secrets.js'
import { CORP_A, JWT_SECRET, SECRET_A, SECRET_B, setup } from './helpers/setup.js'

// The host's SDK, installed before the plugin registers, with the SDK's in-memory exporters.
const spanExporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))

/** Each data point of a metric, as `{ attributes, value }`. */
async function points (name: string): Promise<Array<DataPoint<unknown>>> {
  metricExporter.reset()
  await reader.forceFlush()
  const found = metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics)
    .filter((scope) => scope.scope.name === 'fastify-wecom-auth')
    .flatMap((scope) => scope.metrics).filter((metric) => metric.descriptor.name === name)
  return found.flatMap((metric) => metric.dataPoints as Array<DataPoint<unknown>>)
}

function valueOf (list: Array<DataPoint<unknown>>, attributes: Record<string, unknown>): unknown {
  return list.find((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))?.value
}

const spansNamed = (name: string): ReadableSpan[] => spanExporter.getFinishedSpans().filter((span) => span.name === name)

t.beforeEach(() => spanExporter.reset())

t.test('a login: one span, a child span per WeCom call; logins, calls, durations and gettoken fetches counted', async (t) => {
  const h = await setup(t)
  t.equal((await h.login('zhangsan')).statusCode, 200)

  const [login] = spansNamed('wecom.login')
  t.ok(login, 'a wecom.login span')
  const children = spanExporter.getFinishedSpans().filter((span) => span.parentSpanContext?.spanId === login!.spanContext().spanId)
  t.same(children.map((span) => span.name).sort(), ['wecom gettoken', 'wecom jscode2session', 'wecom user/get'])
  t.same(children.map((span) => span.attributes['wecom.errcode']), [0, 0, 0])

  t.equal(valueOf(await points('wecom_auth.logins'), { outcome: 'ok' }), 1)
  t.equal(valueOf(await points('wecom_auth.wecom.calls'), { 'wecom.endpoint': 'jscode2session', 'wecom.errcode': 0 }), 1)
  t.match(valueOf(await points('wecom_auth.wecom.call.duration'), { 'wecom.endpoint': 'user/get' }), { count: 1 })
  t.equal(valueOf(await points('wecom_auth.wecom.token_fetches'), { outcome: 'ok' }), 1)
})

t.test('refusals: the outcome code and the errcode, never the code sent', async (t) => {
  const h = await setup(t, { api: { breaker: { failures: 1, coolDown: 60_000 } } })
  h.sim.inject('jscode2session', { errcode: 40029 })
  t.equal((await h.login('zhangsan')).statusCode, 401)
  t.ok(valueOf(await points('wecom_auth.logins'), { outcome: 'WECOM_INVALID_CODE' }))
  t.ok(valueOf(await points('wecom_auth.wecom.calls'), { 'wecom.endpoint': 'jscode2session', 'wecom.errcode': 40029 }))
  const [login] = spansNamed('wecom.login')
  t.equal(login!.attributes['wecom_auth.outcome'], 'WECOM_INVALID_CODE')

  // A dropped connection opens the breaker (one failure here): the gauge says so.
  h.sim.inject('jscode2session', { drop: true })
  t.equal((await h.login('zhangsan')).statusCode, 503)
  t.equal(valueOf(await points('wecom_auth.wecom.breaker.state'), { 'wecom.endpoint': 'jscode2session' }), 2)
  t.ok(valueOf(await points('wecom_auth.wecom.calls'), { 'wecom.endpoint': 'jscode2session', 'wecom.failure': 'unreachable' }))
})

t.test('a refresh, a logout and an off-boarding: a span, outcomes and revocations', async (t) => {
  const h = await setup(t)
  const first = (await h.login('zhangsan')).json()
  const renewed = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: first.refresh_token } })
  t.equal(renewed.statusCode, 200)
  t.equal(spansNamed('wecom.refresh').length, 1)
  t.equal(valueOf(await points('wecom_auth.refreshes'), { outcome: 'ok' }), 1)
  await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: 'x'.repeat(40) } })
  t.equal(valueOf(await points('wecom_auth.refreshes'), { outcome: 'WECOM_REFRESH_INVALID' }), 1)

  await h.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: renewed.json().refresh_token } })
  await h.app.wecom.revokeUser(CORP_A, 'zhangsan')
  const revocations = await points('wecom_auth.revocations')
  t.ok(Number(valueOf(revocations, { kind: 'session' })) >= 1)
  t.equal(valueOf(revocations, { kind: 'member' }), 1)
})

t.test('no secret in a span or a metric: spans carry endpoints and errcodes only', async (t) => {
  const h = await setup(t)
  const codes = new Set<string>()
  const issued = { access: new Set<string>(), refresh: new Set<string>() }
  const login = async () => {
    const code = h.sim.issueCode(CORP_A, 'zhangsan')
    codes.add(code)
    const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
    if (res.statusCode === 200) {
      issued.access.add(res.json().access_token)
      issued.refresh.add(res.json().refresh_token)
    }
  }
  await login()
  for (const fault of [{ errcode: 40029 }, { errcode: -1 }, { errcode: 40001 }, { malformed: true as const }, { drop: true as const }]) {
    h.sim.inject('jscode2session', fault)
    await login()
  }
  await h.app.wecom.api().get('/cgi-bin/user/get', { userid: 'zhangsan' })
  const wecomTokens = new Set<string>()
  seenAccessTokens(h.sim, wecomTokens)
  const sessionKeys = new Set([h.sim.sessionKey(CORP_A, 'zhangsan')!])

  const exported = JSON.stringify({
    spans: spanExporter.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes, status: span.status, events: span.events })),
    metrics: metricExporter.getMetrics()
  })
  await reader.forceFlush()
  assertNoSecretsIn(t, 'a span or metric', exported + JSON.stringify(metricExporter.getMetrics()), [
    ['login code', codes], ['WeCom access token', wecomTokens], ['session_key', sessionKeys],
    ['access JWT', issued.access], ['refresh token', issued.refresh],
    ['corp secret', new Set([SECRET_A, SECRET_B])], ['JWT secret', new Set([JWT_SECRET])]
  ])
})

t.test('a provider\'s paths: no suite secret, ticket, permanent code, suite or corp token in a span, a metric, a log line or an error', async (t) => {
  const { OTHER, PROVIDER, SEAL_KEYS, SUITE, suiteOptions } = await import('./helpers/suites.js')
  const { CORP_B } = await import('./helpers/setup.js')
  const h = await setup(t, { ...suiteOptions, session: { recheckInterval: 1 } }, { provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  await h.sim.connectSuites(`${await h.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  const responses: Array<{ statusCode: number, body: string }> = []
  const codes = new Set<string>()
  const permanentCodes = new Set<string>()
  const issued = new Set<string>()
  const login = async (corpId: string, suiteId: string, extra: object = {}) => {
    const code = h.sim.issueCode(corpId, corpId === CORP_B ? 'zhaoliu' : 'zhangsan')
    codes.add(code)
    const res = await h.app.inject({ method: 'POST', url: '/wecom/login', payload: { code, suiteId, ...extra } })
    responses.push(res)
    if (res.statusCode === 200) for (const token of [res.json().access_token, res.json().refresh_token]) issued.add(token)
    return res
  }
  const keep = (corpId: string, suiteId: string) => { permanentCodes.add(h.sim.permanentCode(corpId, { suiteId })!) }

  t.equal((await login(CORP_A, SUITE.suiteId)).statusCode, 503, 'no suite_ticket yet')
  for (const suite of [SUITE, OTHER]) await h.sim.pushSuiteTicket(suite.suiteId)
  h.sim.inject('service/get_permanent_code', { errcode: 40078 })
  await h.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  keep(CORP_A, SUITE.suiteId)
  await h.sim.install(CORP_A, { suiteId: SUITE.suiteId })
  keep(CORP_A, SUITE.suiteId)
  await h.sim.install(CORP_B, { suiteId: OTHER.suiteId })
  keep(CORP_B, OTHER.suiteId)
  const ok = await login(CORP_A, SUITE.suiteId)
  t.equal(ok.statusCode, 200, 'a third-party login')
  t.equal((await login(CORP_B, OTHER.suiteId, { corpId: CORP_B })).statusCode, 200, 'a 代开发 login')
  for (const fault of [{ errcode: 40029 }, { errcode: -1 }, { errcode: 40082 }, { malformed: true as const }, { drop: true as const }]) {
    h.sim.inject('service/miniprogram/jscode2session', fault)
    await login(CORP_A, SUITE.suiteId)
  }
  h.sim.expireTokens(CORP_A)
  h.sim.inject('service/get_corp_token', { errcode: 40084 })
  await login(CORP_A, SUITE.suiteId)
  h.sim.inject('service/get_suite_token', { errcode: 40085 })
  h.sim.inject('service/get_suite_token', { errcode: 40001 })
  responses.push(await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: ok.json().refresh_token } }))
  await h.app.wecom.api(CORP_A).get('/cgi-bin/user/get', { userid: 'zhangsan' })
  await h.sim.resetPermanentCode(CORP_B, { suiteId: OTHER.suiteId })
  keep(CORP_B, OTHER.suiteId)
  await h.sim.pushSuite(SUITE.suiteId, { InfoType: 'change_auth', AuthCorpId: CORP_A })
  await h.sim.pushSuite(SUITE.suiteId, { InfoType: 'change_external_contact', AuthCorpId: CORP_A })
  await h.sim.pushSuite(SUITE.suiteId, { InfoType: 'change_contact', ChangeType: 'delete_user', UserID: 'zhaoliu', AuthCorpId: CORP_B })
  await h.sim.uninstall(CORP_A, { suiteId: SUITE.suiteId })
  await login(CORP_A, SUITE.suiteId)

  const wecomTokens = new Set<string>()
  seenAccessTokens(h.sim, wecomTokens)
  const suiteTokens = new Set(h.sim.requests.map((r) => r.query.suite_access_token).filter((token): token is string => token !== undefined))
  const tickets = new Set([SUITE, OTHER].flatMap((suite) => h.sim.suiteTickets(suite.suiteId).map(({ ticket }) => ticket)))
  await reader.forceFlush()
  const exported = JSON.stringify({
    spans: spanExporter.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes, status: span.status, events: span.events })),
    metrics: metricExporter.getMetrics()
  })
  t.ok(spanExporter.getFinishedSpans().some((span) => span.name.includes('service/get_corp_token')), 'the service endpoints were traced')
  const secrets: Array<[string, Set<string>]> = [
    ['suite secret', new Set([SUITE.secret, OTHER.secret])], ['suite_ticket', tickets], ['permanent code', permanentCodes],
    ['suite access token', suiteTokens], ['corp access token', wecomTokens], ['EncodingAESKey', new Set([SUITE.encodingAESKey, OTHER.encodingAESKey])],
    ['seal key', new Set(SEAL_KEYS)], ['login code', codes], ['access JWT or refresh token', issued]
  ]
  assertNoSecretsIn(t, 'a span or metric', exported, secrets)
  const logged = h.logs.lines.join('\n')
  const errors = responses.filter((res) => res.statusCode >= 400)
  t.ok(errors.length >= 5, 'refusals were answered')
  for (const [kind, values] of secrets) {
    for (const value of values) {
      t.notOk(logged.includes(value), `no ${kind} in a log line`)
      t.notOk(errors.some((res) => res.body.includes(value)), `no ${kind} in an error`)
    }
  }
  for (const res of errors) t.notMatch(res.body, /suite_access_token|permanent_code|suite_secret|suite_ticket|cgi-bin/, `error ${res.statusCode} names no secret's field or URL`)
})
