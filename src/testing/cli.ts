#!/usr/bin/env node
/**
 * fastify-wecom-auth-simulator: the WeCom simulator as a standalone server, for a dev backend in
 * any language (or a mini program's mocks) to point at instead of qyapi.weixin.qq.com. WeCom's
 * endpoints live under /cgi-bin/ as in WeCom; the /sim/ routes do over HTTP what tests do in
 * code: issue the code wx.qy.login would give, queue faults, end tokens, off-board members.
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { ENDPOINTS } from './endpoints.js'
import { createWecomSimulator, isSimulatorNotFound, type SimulatedCorp, type SimulatedDelivery, type SimulatedFault, type WecomEndpoint, type WecomSimulator } from './simulator.js'

const HELP = `Usage: fastify-wecom-auth-simulator [--port 4000] [--host 127.0.0.1] [--members corps.json]

  --port      port to listen on (default 4000; 0 picks a free one)
  --host      address to listen on (default 127.0.0.1: loopback only)
  --members   JSON file: an array of corps, each
              { "corpId", "secret", "members": [{ "userid", "name"?, "status"?, "visible"? }],
                "callback"?: { "url", "token", "encodingAESKey" },
                "webApps"?: [{ "agentId", "secret", "trustedDomains": ["host:port"] }],
                "outsiders"?: [{ "openid", "externalUserid"?, "name"? }] }
              Without it: corp wwdemo0000000001, secret demo-secret-not-a-real-one, members
              zhangsan, lisi (outside the visible range), wangwu (disabled); web app 1000005,
              secret demo-web-secret-not-a-real-one, trusting 127.0.0.1:3000 and localhost:3000
              (the example server); an outsider o-demo-visitor.

WeCom's API: GET /cgi-bin/gettoken, /cgi-bin/miniprogram/jscode2session, /cgi-bin/user/get,
/cgi-bin/auth/getuserinfo, /cgi-bin/get_jsapi_ticket, /cgi-bin/ticket/get, POST
/cgi-bin/message/send, /cgi-bin/auth/getuserdetail. WeCom's pages (open them in a browser; add
&userid=U to be redirected at once):
  GET    /connect/oauth2/authorize?appid=C&redirect_uri=URL&response_type=code&scope=snsapi_base&state=S&agentid=A
  GET    /wwlogin/sso/login?login_type=CorpApp&appid=C&agentid=A&redirect_uri=URL&state=S
Control routes (query parameters; corpid defaults to the first corp):
  POST   /sim/code?userid=U[&corpid=C]         {"code"}: what wx.qy.login gives the member
  POST   /sim/fault?endpoint=E&errcode=N       next call of E answers errcode N; instead of
         errcode: timeout=1 | drop=1 | malformed=1 | delay=MS | trickle=MS; &times=N (default 1)
  DELETE /sim/faults                           clears every queued fault
  POST   /sim/expire-tokens[?corpid=C][&errcode=42001|40014]
  POST   /sim/latency?ms=MS                    added to every call
  POST   /sim/remove?userid=U[&corpid=C]       the member is deleted (event delete_user)
  POST   /sim/disable?userid=U[&corpid=C]      status 2 (event update_user)
  POST   /sim/visible?userid=U&visible=0|1     out of / into the visible range
  GET    /sim/requests                         the last 100 calls (secrets and tokens masked)
Events go to a corp's callback URL when members.json gives one. Stop with Ctrl-C (SIGINT) or SIGTERM.
`

const DEMO_CORPS: SimulatedCorp[] = [{
  corpId: 'wwdemo0000000001',
  secret: 'demo-secret-not-a-real-one',
  members: [
    { userid: 'zhangsan', name: '张三', department: [1] },
    { userid: 'lisi', name: '李四', visible: false },
    { userid: 'wangwu', name: '王五', status: 2 }
  ],
  // The example server's origin (examples/server.ts), by address and by name.
  webApps: [{ agentId: 1000005, secret: 'demo-web-secret-not-a-real-one', trustedDomains: ['127.0.0.1:3000', 'localhost:3000'] }],
  outsiders: [{ openid: 'o-demo-visitor', name: 'A WeChat visitor' }]
}]

const ENDPOINT_NAMES: ReadonlySet<string> = new Set(Object.keys(ENDPOINTS))
/** Query parameters that are credentials: masked in /sim/requests, as they never appear in a log. */
const SECRET_PARAMS = new Set(['corpsecret', 'access_token', 'js_code', 'code'])

class BadRequest extends Error {}

function need (query: URLSearchParams, name: string): string {
  const value = query.get(name)
  if (value === null || value === '') throw new BadRequest(`${name} is required`)
  return value
}

function milliseconds (query: URLSearchParams, name: string): number {
  const value = Number(need(query, name))
  if (!Number.isInteger(value) || value < 0 || value > 600_000) throw new BadRequest(`${name} must be an integer of milliseconds, 0 to 600000`)
  return value
}

function faultOf (query: URLSearchParams): SimulatedFault {
  if (query.has('errcode')) {
    const errcode = Number(query.get('errcode'))
    if (!Number.isInteger(errcode)) throw new BadRequest('errcode must be an integer')
    return { errcode }
  }
  if (query.get('timeout') === '1') return { timeout: true }
  if (query.get('drop') === '1') return { drop: true }
  if (query.get('malformed') === '1') return { malformed: true }
  if (query.has('delay')) return { delay: milliseconds(query, 'delay') }
  if (query.has('trickle')) return { trickle: milliseconds(query, 'trickle') }
  throw new BadRequest('name the fault: errcode=N, timeout=1, drop=1, malformed=1, delay=MS or trickle=MS')
}

function deliveryOf (delivery: SimulatedDelivery | undefined): unknown {
  return delivery === undefined ? { event: null } : { event: delivery.event, acknowledged: delivery.acknowledged }
}

/** The /sim/ routes: what a test does to the simulator in code, over HTTP. */
function control (sim: WecomSimulator, defaultCorp: string) {
  const corpOf = (query: URLSearchParams) => query.get('corpid') || defaultCorp
  const routes: Record<string, (query: URLSearchParams) => unknown> = {
    'POST /sim/code': (query) => ({ code: sim.issueCode(corpOf(query), need(query, 'userid')) }),
    'POST /sim/fault': (query) => {
      const endpoint = need(query, 'endpoint')
      if (!ENDPOINT_NAMES.has(endpoint)) throw new BadRequest(`endpoint must be one of ${[...ENDPOINT_NAMES].join(', ')}`)
      const times = query.has('times') ? Number(query.get('times')) : 1
      if (!Number.isInteger(times) || times < 1) throw new BadRequest('times must be a positive integer')
      sim.inject(endpoint as WecomEndpoint, faultOf(query), times)
      return undefined
    },
    'DELETE /sim/faults': () => sim.clearFaults(),
    'POST /sim/expire-tokens': (query) => {
      const errcode = query.has('errcode') ? Number(query.get('errcode')) : 42001
      if (errcode !== 42001 && errcode !== 40014) throw new BadRequest('errcode must be 42001 or 40014')
      sim.expireTokens(query.get('corpid') ?? undefined, errcode)
    },
    'POST /sim/latency': (query) => sim.setLatency(milliseconds(query, 'ms')),
    'POST /sim/remove': async (query) => deliveryOf(await sim.removeMember(corpOf(query), need(query, 'userid'))),
    'POST /sim/disable': async (query) => deliveryOf(await sim.disableMember(corpOf(query), need(query, 'userid'))),
    'POST /sim/visible': async (query) => {
      const visible = need(query, 'visible')
      if (visible !== '0' && visible !== '1') throw new BadRequest('visible must be 0 or 1')
      return deliveryOf(await sim.setVisible(corpOf(query), need(query, 'userid'), visible === '1'))
    },
    'GET /sim/requests': () => sim.requests.map(({ endpoint, query }) => ({
      endpoint,
      query: Object.fromEntries(Object.entries(query).map(([name, value]) => [name, SECRET_PARAMS.has(name) ? '***' : value]))
    }))
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
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
        // A corp or member the simulator does not have: the caller named one.
        const status = error instanceof BadRequest ? 400 : isSimulatorNotFound(error) ? 404 : 500
        reply(status, { error: error.message })
      }
    )
  }
}

function loadCorps (file: string | undefined): SimulatedCorp[] {
  if (file === undefined) return DEMO_CORPS
  let corps: unknown
  try {
    corps = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    // Not JSON.parse's message: Node quotes the text around the fault, which may be a secret.
    if (error instanceof SyntaxError) throw new Error(`${file}: not valid JSON`)
    throw error
  }
  if (!Array.isArray(corps) || corps.length === 0) throw new Error(`${file}: expected a non-empty JSON array of corps`)
  return corps as SimulatedCorp[]
}

/** WeCom's member status (user/get `status`), as the README and `--help` say it. */
const STATUS_WORDS: Record<number, string> = { 2: 'disabled', 4: 'not activated', 5: 'quit' }

function describe (corp: SimulatedCorp): string {
  const members = (corp.members ?? []).map(({ userid, status, visible }) =>
    visible === false
      ? `${userid} (outside the visible range)`
      : (status ?? 1) !== 1 ? `${userid} (${STATUS_WORDS[status!] ?? `status ${status}`})` : userid)
  const apps = (corp.webApps ?? []).map(({ agentId, trustedDomains }) => `; web app ${agentId} for ${trustedDomains.join(', ') || 'no domain'}`)
  return `  corp ${corp.corpId}: ${members.join(', ') || 'no members'}${apps.join('')}${corp.callback ? `; events to ${corp.callback.url}` : ''}`
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '4000' },
      host: { type: 'string', default: '127.0.0.1' },
      members: { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return
  }
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, got ${values.port}`)
  const corps = loadCorps(values.members)
  // The control routes need the simulator they control; until it is there (the same turn as its
  // listen resolving, so in practice never) they answer 503.
  const routes = { handle: (_req: IncomingMessage, res: ServerResponse): void => { res.writeHead(503).end() } }
  const sim = await createWecomSimulator({ corps, port, host: values.host, fallback: (req, res) => routes.handle(req, res) })
  routes.handle = control(sim, corps[0]!.corpId)
  process.stdout.write([
    `WeCom simulator listening on ${sim.url}`,
    ...corps.map(describe),
    `Point the plugin at it with api: { baseUrl: '${sim.url}', authorizeUrl: '${sim.authorizeUrl}', ssoUrl: '${sim.ssoUrl}' }. A code for a member:`,
    `  curl -s -X POST '${sim.url}/sim/code?corpid=${corps[0]!.corpId}&userid=${corps[0]!.members?.[0]?.userid ?? 'USERID'}'`,
    'More control routes: --help. Ctrl-C stops it.',
    ''
  ].join('\n'))
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      sim.close().then(() => process.stdout.write('WeCom simulator stopped\n'), () => { process.exitCode = 1 })
    })
  }
}

main().catch((error: Error) => {
  process.stderr.write(`fastify-wecom-auth-simulator: ${error.message}\n`)
  process.exitCode = 1
})
