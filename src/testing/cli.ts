#!/usr/bin/env node
/**
 * fastify-wecom-auth-simulator: the WeCom simulator as a standalone server, for a dev backend in
 * any language (or a mini program's mocks) to point at instead of qyapi.weixin.qq.com. WeCom's
 * endpoints live under /cgi-bin/ as in WeCom; the /sim/ routes (cli-control.ts) do over HTTP what
 * tests do in code: issue the code wx.qy.login would give, queue faults, end tokens, off-board
 * members, push a service provider's suite_tickets and have corps install its suite.
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { createControl } from './cli-control.js'
import { createWecomSimulator, type SimulatedCorp, type SimulatedSuite, type WecomSimulator } from './simulator.js'
import { DEMO_CLIENT, DEMO_PROVIDER, DEMO_SUITE } from './demo.js'

const HELP = `Usage: fastify-wecom-auth-simulator [--port 4000] [--host 127.0.0.1] [--members corps.json]
                                    [--suite-ticket-every 600] [--suite-callback URL]

  --port      port to listen on (default 4000; 0 picks a free one)
  --host      address to listen on (default 127.0.0.1: loopback only)
  --members   JSON file: an array of corps, each
              { "corpId", "secret", "members": [{ "userid", "name"?, "status"?, "visible"? }],
                "callback"?: { "url", "token", "encodingAESKey" },
                "webApps"?: [{ "agentId", "secret", "trustedDomains": ["host:port"] }],
                "outsiders"?: [{ "openid", "externalUserid"?, "name"? }] }
              or, for a service provider's suites of your own,
              { "corps": [...], "provider": { "corpId" },
                "suites": [{ "suiteId", "secret", "token", "encodingAESKey", "kind"?: "third-party" | "custom" }] }
              (without "suites", the demo provider and suite below).
              Without it: corp wwdemo0000000001, secret demo-secret-not-a-real-one, members
              zhangsan, lisi (outside the visible range), wangwu (disabled); web app 1000005,
              secret demo-web-secret-not-a-real-one, trusting 127.0.0.1:3000 and localhost:3000
              (the example server); an outsider o-demo-visitor. Corp wwdemoclient0001, member
              sunqi, a client of provider wwdemoprovider01, whose third-party suite
              wwdemosuite00001 has secret demo-suite-secret-not-a-real-one, token demoSuiteToken
              and encodingAESKey ZGVtby1zdWl0ZS1hZXMta2V5LW5vdC1hLXJlYWwhISE.
  --suite-ticket-every
              seconds between the suite_ticket pushes to each suite once its callback URL is
              connected, the first at once (default 600, WeCom's; 0: none but POST /sim/suite-ticket)
  --suite-callback
              the suites' command callback URL (the plugin's {prefix}/suite/callback), connected
              at start; if WeCom's check fails there, POST /sim/connect-suites once it listens

WeCom's API: GET /cgi-bin/gettoken, /cgi-bin/miniprogram/jscode2session, /cgi-bin/user/get,
/cgi-bin/auth/getuserinfo, /cgi-bin/get_jsapi_ticket, /cgi-bin/ticket/get, POST
/cgi-bin/message/send, /cgi-bin/auth/getuserdetail; a provider's POST /cgi-bin/service/
get_suite_token, get_permanent_code, get_auth_info, get_corp_token and GET
/cgi-bin/service/miniprogram/jscode2session. WeCom's pages (open them in a browser; add
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
The service provider's (suiteid defaults to the only suite; pushes answer
{"acknowledged", "status"}, the callback's HTTP status, null when none came):
  POST   /sim/connect-suites?url=URL           WeCom's URL check of each suite there (502 if it
         fails), then its pushes go there and the timed suite_tickets start
  POST   /sim/suite-ticket[?suiteid=S]         a suite_ticket now: {"timestamp", ...}; &age=SECONDS
         dates it that far back (a late push); &again=1 pushes the last one once more
  GET    /sim/suite-tickets[?suiteid=S]        the pushes so far, as they arrived: [{"timestamp", ...}]
  POST   /sim/suite-ticket-plan?fates=F,F,...  the next timed pushes' fates, then on time again:
         on-time | lost | late | twice | out-of-order (held back until after the next one)
  POST   /sim/install?corpid=C[&suiteid=S]     the corp installs the suite (create_auth)
  POST   /sim/uninstall?corpid=C[&suiteid=S]   the corp uninstalls it (cancel_auth): its sessions end
  POST   /sim/reset-permanent-code?corpid=C[&suiteid=S]   a new permanent code (reset_permanent_code)
No answer shows a ticket, token or permanent code. Events go to a corp's callback URL when
members.json gives one. Stop with Ctrl-C (SIGINT) or SIGTERM.
`

/** The simulated world: corps, and a service provider with its suites (none when `suites` is empty). */
interface World { corps: SimulatedCorp[], provider?: { corpId: string }, suites: SimulatedSuite[] }

const DEMO_WORLD: World = {
  corps: [
    {
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
    },
    DEMO_CLIENT
  ],
  provider: DEMO_PROVIDER,
  suites: [DEMO_SUITE]
}

function readJson (file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    // Not JSON.parse's message: Node quotes the text around the fault, which may be a secret.
    if (error instanceof SyntaxError) throw new Error(`${file}: not valid JSON`)
    throw error
  }
}

/** The world of `--members`: an array of corps (the demo provider kept), or { corps, provider?, suites? }. */
function loadWorld (file: string | undefined): World {
  if (file === undefined) return DEMO_WORLD
  const parsed = readJson(file)
  const given = (Array.isArray(parsed) ? { corps: parsed } : typeof parsed === 'object' && parsed !== null ? parsed : {}) as Partial<World>
  const { corps, provider, suites } = given
  if (!Array.isArray(corps) || corps.length === 0) throw new Error(`${file}: expected a non-empty JSON array of corps, or { "corps": [...], "provider", "suites" }`)
  if (suites === undefined) return { corps, provider: DEMO_PROVIDER, suites: [DEMO_SUITE] }
  if (!Array.isArray(suites)) throw new Error(`${file}: "suites" must be an array`)
  if (suites.length > 0 && typeof provider?.corpId !== 'string') throw new Error(`${file}: "suites" go with "provider": { "corpId" }, the service provider's own CorpID`)
  return { corps, provider, suites }
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

/** The provider's lines of the start-up text; `connection`: what --suite-callback came to, if given. */
function describeProvider ({ provider, suites }: World, sim: WecomSimulator, every: number, connection: string | undefined): string[] {
  if (suites.length === 0 || provider === undefined) return []
  const kinds = suites.map(({ suiteId, kind = 'third-party' }) => `${kind} suite ${suiteId}`)
  return [
    `  provider ${provider.corpId}: ${kinds.join(', ')}; ${every > 0 ? `a suite_ticket every ${every} s to each once connected` : 'suite_tickets pushed by POST /sim/suite-ticket only'}`,
    connection ?? `  connect them to your server's {prefix}/suite/callback (WeCom's URL check first), then install a corp (--help):\n  curl -s -X POST '${sim.url}/sim/connect-suites?url=http://127.0.0.1:3000/wecom/suite/callback'`
  ]
}

/** `--suite-ticket-every`: seconds, fractions allowed (tests), up to a day. */
function ticketInterval (value: string): number {
  const every = Number(value)
  if (value.trim() === '' || !Number.isFinite(every) || every < 0 || every > 86_400) throw new Error(`--suite-ticket-every must be seconds, 0 to 86400, got ${value}`)
  return every
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '4000' },
      host: { type: 'string', default: '127.0.0.1' },
      members: { type: 'string' },
      'suite-ticket-every': { type: 'string', default: '600' },
      'suite-callback': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return
  }
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, got ${values.port}`)
  const every = ticketInterval(values['suite-ticket-every'])
  const world = loadWorld(values.members)
  const { corps } = world
  // The control routes need the simulator they control; until it is there (the same turn as its
  // listen resolving, so in practice never) they answer 503.
  const routes = { handle: (_req: IncomingMessage, res: ServerResponse): void => { res.writeHead(503).end() } }
  const sim = await createWecomSimulator({ ...world, suiteTicketEvery: every, port, host: values.host, fallback: (req, res) => routes.handle(req, res) })
  const control = createControl(sim, { defaultCorp: corps[0]!.corpId, suiteIds: world.suites.map(({ suiteId }) => suiteId) })
  routes.handle = control.handle
  const callback = values['suite-callback']
  // The backend may well start after the simulator: a failed check is said, and the simulator serves on.
  const connection = callback === undefined
    ? undefined
    : await control.connectSuites(callback).then(() => `  suites connected to ${callback}`, (error: Error) => `  suites not connected: ${error.message}`)
  process.stdout.write([
    `WeCom simulator listening on ${sim.url}`,
    ...corps.map(describe),
    ...describeProvider(world, sim, every, connection),
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
