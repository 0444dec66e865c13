import { createWecomSimulator } from 'fastify-wecom-auth/testing'
import { request } from 'undici'
import { CORP_A, LATENCY, memberId, ROUNDS, simulatedCorps, WEB_ORIGIN } from '../fixtures.js'
import { cpuRate, loadServed, median, medianRatio, rounds, spawnServer, type LoadResult, type ServedRun } from '../harness.js'
import { fixed, ms, target, times, type Section } from '../report.js'

const VARIANTS = ['none', 'hook', 'plain', 'plugin'] as const
const SIGNING = ['/wecom/jssdk/signature', '/authed'] as const
const CONNECTIONS = 64
const SECONDS = 1

/**
 * Scenario 1: the same route with no auth, with a no-op onRequest hook, with @fastify/jwt's
 * jwtVerify, with the plugin's authenticate.
 */
export async function authScenario (): Promise<Section> {
  const sim = await createWecomSimulator({ corps: simulatedCorps(), latency: LATENCY })
  const server = await spawnServer({ simUrl: sim.url })
  try {
    // A token from the plugin's own login: /plain and /plugin verify the very same JWT.
    const { statusCode, body } = await request(`${server.url}/wecom/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: sim.issueCode(CORP_A.corpId, memberId(0)) })
    })
    const { access_token: token } = await body.json() as { access_token: string }
    if (statusCode !== 200) throw new Error(`login for the auth scenario answered ${statusCode}`)

    const run = (variant: typeof VARIANTS[number], duration: number) => loadServed(server, {
      urls: [server.url], path: `/${variant}`, connections: CONNECTIONS, duration, headers: { authorization: `Bearer ${token}` }
    })
    for (const variant of VARIANTS) await run(variant, 0.5)
    const runs = await rounds(VARIANTS, ROUNDS, (variant) => run(variant, SECONDS))

    // The JS-SDK signature route against a trivial authenticated POST of the same body: the
    // tickets are fetched once (the warm-up), then served from the cache like the token.
    const post = (path: typeof SIGNING[number], duration: number) => loadServed(server, {
      urls: [server.url],
      path,
      method: 'POST',
      connections: CONNECTIONS,
      duration,
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ url: `${WEB_ORIGIN}/orders?id=7` })
    })
    for (const path of SIGNING) await post(path, 0.5)
    const signing = await rounds(SIGNING, ROUNDS, (path) => post(path, SECONDS))
    const signingVsAuthed = medianRatio(signing['/wecom/jssdk/signature'], signing['/authed'], (run: LoadResult) => run.rate)

    const rate = (run: LoadResult) => run.rate
    const vsPlain = medianRatio(runs.plugin, runs.plain, rate)
    const vsHook = medianRatio(runs.plugin, runs.hook, rate)
    const cpuVsHook = medianRatio(runs.plugin, runs.hook, cpuRate)
    const vsNone = medianRatio(runs.plugin, runs.none, rate)
    const micros = (variantRuns: ServedRun[]) => fixed(median(variantRuns.map((run) => run.serverMicros)), 1)
    const failed = VARIANTS.reduce((sum, variant) => sum + runs[variant].reduce((n, run) => n + run.failed, 0), 0)
    return {
      title: '1. Authenticated route',
      about: 'GET of the same trivial route in one server process: no auth (/none), a no-op onRequest hook (/hook, what any ' +
        'guard costs before it does anything), @fastify/jwt `request.jwtVerify()` (/plain), the plugin\'s `app.wecom.authenticate` ' +
        '(/plugin), all with the same Bearer JWT from the plugin\'s login (HS256, same key). ' +
        `${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} rounds. The server's CPU time per answered ` +
        'request is read from the server process around each run (scenario 7 says why). Then POST /wecom/jssdk/signature ' +
        '(both JS-SDK signatures of a page, tickets cached) against POST /authed (the same body and token, answered at once).',
      head: ['variant', 'req/s', 'p50', 'p99', 'server CPU µs / req'],
      rows: [
        ...VARIANTS.map((variant) => [
          variant,
          fixed(median(runs[variant].map(rate))),
          ms(median(runs[variant].map((run) => run.p50))),
          ms(median(runs[variant].map((run) => run.p99))),
          micros(runs[variant])
        ]),
        ...SIGNING.map((path) => [
          `POST ${path}`,
          fixed(median(signing[path].map(rate))),
          ms(median(signing[path].map((run) => run.p50))),
          ms(median(signing[path].map((run) => run.p99))),
          micros(signing[path])
        ])
      ],
      lines: [
        target('plugin / plain @fastify/jwt (req/s)', times(vsPlain), '≥ 1.00×', vsPlain >= 1),
        target('plugin / no-op onRequest hook (req/s)', times(vsHook), '≥ 0.90×', vsHook >= 0.9),
        target('JS-SDK signature / trivial authenticated POST (req/s)', times(signingVsAuthed), '≥ 0.90×', signingVsAuthed >= 0.9),
        `server CPU per request: ${micros(runs.plugin)} µs for the plugin, ${micros(runs.hook)} µs for the no-op hook ` +
          `(${times(cpuVsHook)} as requests per server CPU-second)`,
        `plugin / no auth (req/s): ${times(vsNone)}; the noise: no-op hook / no auth (req/s), nearly the same work, ` +
          `${times(medianRatio(runs.hook, runs.none, rate))}`,
        `non-2xx or errors over all runs: ${failed}`
      ]
    }
  } finally {
    await server.close()
    await sim.close()
  }
}
