import { SpanKind, SpanStatusCode, metrics, trace, type Attributes, type Meter, type Tracer } from '@opentelemetry/api'

// Spans and metrics through @opentelemetry/api only: no-ops unless the host installed an SDK
// before registering the plugin. Attributes name endpoints, errcodes and error codes: never a
// token, a code, a secret or a member (README, Observability, lists every span and metric).

const SCOPE = 'fastify-wecom-auth'

/** The breaker's states as the gauge reports them. */
const BREAKER_STATES = { closed: 0, 'half-open': 1, open: 2 } as const

export interface Telemetry {
  /** A login or refresh: a span around it, and its outcome (`ok` or the error's code) counted. */
  operation<T> (name: 'login' | 'refresh', run: () => Promise<T>): Promise<T>
  /** One HTTP exchange with WeCom: a span, and its count and duration by endpoint and errcode. */
  call<T extends { errcode?: unknown }> (endpoint: string, run: () => Promise<T>): Promise<T>
  /** A gettoken fetch for the token cache, by outcome. */
  tokenFetch<T> (run: () => Promise<T>): Promise<T>
  breakerChanged (endpoint: string, state: keyof typeof BREAKER_STATES): void
  /** Sessions ended or members off-boarded, as this process applies them. */
  revoked (sessions: number, members: number): void
  /** A store found down: `sessions` (an operation answered 503) or `tokens` (the shared WeCom token store). */
  storeDown (store: 'sessions' | 'tokens'): void
}

export function createTelemetry (): Telemetry {
  const tracer = trace.getTracer(SCOPE)
  const meters = instruments(metrics.getMeter(SCOPE))
  return {
    operation: (name, run) => operation(tracer, meters, name, run),
    call: (endpoint, run) => call(tracer, meters, endpoint, run),
    async tokenFetch (run) {
      try {
        const token = await run()
        meters.tokenFetches.add(1, { outcome: 'ok' })
        return token
      } catch (error) {
        meters.tokenFetches.add(1, { outcome: error instanceof Error ? error.name : 'error' })
        throw error
      }
    },
    breakerChanged (endpoint, state) {
      meters.breakers.set(endpoint, BREAKER_STATES[state])
    },
    revoked (sessions, members) {
      if (sessions > 0) meters.revocations.add(sessions, { kind: 'session' })
      if (members > 0) meters.revocations.add(members, { kind: 'member' })
    },
    storeDown (store) {
      meters.storeOutages.add(1, { store })
    }
  }
}

/** Every metric of the README's list, and the breakers' states the gauge reads. */
function instruments (meter: Meter) {
  const operations = {
    login: meter.createCounter('wecom_auth.logins', { description: 'Logins, by outcome (ok or the error code)' }),
    refresh: meter.createCounter('wecom_auth.refreshes', { description: 'Refreshes, by outcome (ok or the error code)' })
  }
  const calls = meter.createCounter('wecom_auth.wecom.calls', { description: 'HTTP exchanges with WeCom, by endpoint and errcode' })
  const callDuration = meter.createHistogram('wecom_auth.wecom.call.duration', {
    description: 'Duration of an HTTP exchange with WeCom, by endpoint and errcode', unit: 'ms'
  })
  const tokenFetches = meter.createCounter('wecom_auth.wecom.token_fetches', { description: 'gettoken fetches of the token cache, by outcome' })
  const revocations = meter.createCounter('wecom_auth.revocations', { description: 'Sessions ended and members off-boarded, as applied here' })
  const storeOutages = meter.createCounter('wecom_auth.store.outages', { description: 'A store found down, by store' })
  const breakers = new Map<string, number>()
  meter.createObservableGauge('wecom_auth.wecom.breaker.state', { description: 'Breaker per WeCom endpoint: 0 closed, 1 half-open, 2 open' })
    .addCallback((result) => {
      for (const [endpoint, state] of breakers) result.observe(state, { 'wecom.endpoint': endpoint })
    })
  return { operations, calls, callDuration, tokenFetches, revocations, storeOutages, breakers }
}

type Instruments = ReturnType<typeof instruments>

function operation<T> (tracer: Tracer, meters: Instruments, name: 'login' | 'refresh', run: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(`wecom.${name}`, { kind: SpanKind.INTERNAL }, async (span) => {
    try {
      const result = await run()
      meters.operations[name].add(1, { outcome: 'ok' })
      return result
    } catch (error) {
      const code = codeOf(error)
      meters.operations[name].add(1, { outcome: code })
      span.setAttribute('wecom_auth.outcome', code)
      span.setStatus({ code: SpanStatusCode.ERROR, message: code })
      if (code === 'WECOM_STORE_UNAVAILABLE') meters.storeOutages.add(1, { store: 'sessions' })
      throw error
    } finally {
      span.end()
    }
  })
}

function call<T extends { errcode?: unknown }> (tracer: Tracer, meters: Instruments, endpoint: string, run: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(`wecom ${endpoint}`, { kind: SpanKind.CLIENT, attributes: { 'wecom.endpoint': endpoint } }, async (span) => {
    const started = performance.now()
    // Set in try or catch, whichever ends the call.
    let attributes!: Attributes
    try {
      const answer = await run()
      const errcode = typeof answer.errcode === 'number' ? answer.errcode : 0
      // Written out, not spread from the endpoint's: a spread cost each call 1 µs of a login's CPU.
      attributes = { 'wecom.endpoint': endpoint, 'wecom.errcode': errcode }
      if (errcode !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `errcode ${errcode}` })
      return answer
    } catch (error) {
      // No answer: the failure's kind (unreachable, malformed; a deadline's abort is unreachable), never its message.
      const failure = error instanceof Error && 'kind' in error ? String(error.kind) : 'error'
      attributes = { 'wecom.endpoint': endpoint, 'wecom.failure': failure }
      span.setStatus({ code: SpanStatusCode.ERROR, message: failure })
      throw error
    } finally {
      span.setAttributes(attributes)
      span.end()
      meters.calls.add(1, attributes)
      meters.callDuration.record(performance.now() - started, attributes)
    }
  })
}

function codeOf (error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'ERROR'
}
