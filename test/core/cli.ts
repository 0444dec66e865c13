import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import fastifyWecomAuth from '../../src/index.js'
import { childEnv, compiled } from '../helpers/children.js'

// The command-line simulator, spawned as a user runs it (from the sources, bundled by
// helpers/children.ts, so that the test needs no build; package.ts checks that the built bin is
// shipped).

const CLI = new URL('../../src/testing/cli.ts', import.meta.url)
/** Process start takes well under a second here; generous for a busy 2-core box. */
const START_TIMEOUT = 20_000

async function startCli (t: Test, args: string[]) {
  const child = spawn(process.execPath, [await compiled(CLI), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const deadline = Date.now() + START_TIMEOUT
  while (!stdout.includes('Ctrl-C stops it') && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1]
  return { child, url, exited, output: () => ({ stdout, stderr }) }
}

const post = (url: string) => fetch(url, { method: 'POST' })
const json = async <T = Record<string, unknown>>(response: Promise<Response>): Promise<T> => await (await response).json() as T

/** The demo suite as --help gives it, for the plugin of a provider's backend to be set up with. */
const DEMO_SUITE = {
  suiteId: 'wwdemosuite00001',
  secret: 'demo-suite-secret-not-a-real-one',
  token: 'demoSuiteToken',
  encodingAESKey: 'ZGVtby1zdWl0ZS1hZXMta2V5LW5vdC1hLXJlYWwhISE',
  kind: 'third-party' as const
}
const CLIENT = 'wwdemoclient0001'

type Suite = typeof DEMO_SUITE | (Omit<typeof DEMO_SUITE, 'kind'> & { kind: 'custom' })

/**
 * A provider's backend on the plugin, with the demo suite unless `suites` are given, against the
 * CLI at `url`, listening on loopback: its base URL too.
 */
async function providerBackend (t: Test, url: string, { provider = 'wwdemoprovider01', suites = [DEMO_SUITE] }: { provider?: string, suites?: Suite[] } = {}) {
  const app = Fastify()
  await app.register(fastifyWecomAuth, {
    provider: { corpId: provider },
    suites,
    sealKeys: ['a-seal-key-of-the-cli-tests-at-least-32-chars'],
    jwt: { secret: 'a-jwt-secret-of-the-cli-tests-at-least-32-chars' },
    api: { baseUrl: url, timeout: 10_000 }
  })
  app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => request.wecomUser)
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const login = async (userid: string) => {
    const { code } = await json<{ code: string }>(post(`${url}/sim/code?corpid=${CLIENT}&userid=${userid}`))
    return await app.inject({ method: 'POST', url: '/wecom/login', payload: { code, suiteId: DEMO_SUITE.suiteId } })
  }
  const me = (token: string) => app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  return { app, base, login, me }
}

/** Polls `read` every 50 ms until `done` says yes: 30 s at most, for a busy 2-core box. */
async function until<T> (what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (const started = Date.now(); ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() - started > 30_000) throw new Error(`waited 30 s for ${what}: ${JSON.stringify(value)}`)
  }
}

// One process for the demo corp's checks, as a user starts it: a start costs some 1.5 CPU-s.
t.test('the demo corp: prints its URL and corps; issues codes, faults, web logins; stops on SIGTERM', async (t) => {
  const cli = await startCli(t, ['--port', '0'])
  t.ok(cli.url, `a URL printed: ${cli.output().stdout}`)
  const url = cli.url!

  await t.test('its web app: the pages redirect to the example server\'s origin, a code gives the member', async (t) => {
    t.match(cli.output().stdout, 'web app 1000005 for 127.0.0.1:3000, localhost:3000')
    t.match(cli.output().stdout, `authorizeUrl: '${url}/connect/oauth2/authorize'`, 'the authorize page named')
    t.match(cli.output().stdout, `ssoUrl: '${url}/wwlogin/sso/login'`, 'the PC login page named')
    // The options it prints are ones the plugin takes: api refuses keys it does not know.
    t.match(cli.output().stdout, `api: { baseUrl: '${url}', authorizeUrl: `)
    t.notMatch(cli.output().stdout, 'demo-web-secret-not-a-real-one', 'no secret printed')
    const page = `${url}/connect/oauth2/authorize?appid=wwdemo0000000001&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/wecom/web/callback')}&response_type=code&scope=snsapi_base&state=s1&agentid=1000005`
    t.match(await (await fetch(page)).text(), 'zhangsan', 'the picker lists the members')
    const redirect = await fetch(`${page}&userid=zhangsan`, { redirect: 'manual' })
    t.equal(redirect.status, 302)
    const code = new URL(redirect.headers.get('location')!).searchParams.get('code')!
    const token = await (await fetch(`${url}/cgi-bin/gettoken?corpid=wwdemo0000000001&corpsecret=demo-web-secret-not-a-real-one`)).json() as { access_token: string }
    t.equal((await post(`${url}/sim/fault?endpoint=auth/getuserinfo&errcode=60020`)).status, 204)
    const userinfo = `${url}/cgi-bin/auth/getuserinfo?access_token=${token.access_token}&code=${encodeURIComponent(code)}`
    t.match(await (await fetch(userinfo)).json(), { errcode: 60020 })
    t.match(await (await fetch(userinfo)).json(), { errcode: 0, userid: 'zhangsan' })
    t.notMatch(JSON.stringify(await (await fetch(`${url}/sim/requests`)).json()), code, 'the request log shows no code')
  })

  await t.test('codes, gettoken, faults, the request log, bad control requests', async (t) => {
    t.match(cli.output().stdout, 'corp wwdemo0000000001: zhangsan, lisi (outside the visible range), wangwu (disabled)')
    t.notMatch(cli.output().stdout, 'demo-secret-not-a-real-one', 'no secret printed')

    const { code } = await (await post(`${url}/sim/code?userid=zhangsan`)).json() as { code: string }
    const token = await (await fetch(`${url}/cgi-bin/gettoken?corpid=wwdemo0000000001&corpsecret=demo-secret-not-a-real-one`)).json() as { access_token: string }
    const session = await (await fetch(`${url}/cgi-bin/miniprogram/jscode2session?access_token=${token.access_token}&js_code=${code}&grant_type=authorization_code`)).json()
    t.match(session, { errcode: 0, corpid: 'wwdemo0000000001', userid: 'zhangsan' })

    t.equal((await post(`${url}/sim/fault?endpoint=user/get&errcode=-1&times=2`)).status, 204)
    const user = `${url}/cgi-bin/user/get?access_token=${token.access_token}&userid=zhangsan`
    t.equal(((await (await fetch(user)).json()) as { errcode: number }).errcode, -1)
    t.equal((await fetch(`${url}/sim/faults`, { method: 'DELETE' })).status, 204)
    t.equal(((await (await fetch(user)).json()) as { errcode: number }).errcode, 0, 'cleared')

    t.equal((await post(`${url}/sim/disable?userid=zhangsan`)).status, 200)
    t.equal(((await (await fetch(user)).json()) as { status: number }).status, 2)
    t.equal((await post(`${url}/sim/expire-tokens`)).status, 204)
    t.equal(((await (await fetch(user)).json()) as { errcode: number }).errcode, 42001)

    const log = await (await fetch(`${url}/sim/requests`)).json() as Array<{ query: Record<string, string> }>
    t.ok(log.length >= 5)
    t.notMatch(JSON.stringify(log), token.access_token, 'the request log shows no token')
    t.notMatch(JSON.stringify(log), 'demo-secret-not-a-real-one', 'nor the secret')

    t.equal((await post(`${url}/sim/code?userid=nobody`)).status, 404)
    t.equal((await post(`${url}/sim/code`)).status, 400)
    t.equal((await post(`${url}/sim/fault?endpoint=nope&errcode=1`)).status, 400)
    t.equal((await post(`${url}/sim/fault?endpoint=gettoken`)).status, 400)
    t.equal((await post(`${url}/sim/latency?ms=-5`)).status, 400)
    t.equal((await fetch(`${url}/sim/nothing`)).status, 404)
  })

  cli.child.kill('SIGTERM')
  t.same(await cli.exited, [0, null], 'exits 0 on SIGTERM')
  t.match(cli.output().stdout, 'WeCom simulator stopped')
  await t.rejects(fetch(`${url}/sim/requests`), 'the port is closed')
})

interface TicketPush { timestamp: number, acknowledged: boolean, status: number | null }

// The provider's story over HTTP, as a backend in another language drives it: timed pushes every
// 0.25 s here rather than WeCom's 10 minutes, so that planned fates are seen in a second or two.
t.test('the demo provider: its suite connected, suite_tickets timed, planned and by hand, a corp installs, logs in, uninstalls', async (t) => {
  const cli = await startCli(t, ['--port', '0', '--suite-ticket-every', '0.25'])
  const url = cli.url!
  const { stdout } = cli.output()
  t.match(stdout, `corp ${CLIENT}: sunqi`)
  t.match(stdout, 'provider wwdemoprovider01: third-party suite wwdemosuite00001; a suite_ticket every 0.25 s to each once connected')
  t.match(stdout, `${url}/sim/connect-suites?url=`, 'how to connect the suites')
  for (const secret of [DEMO_SUITE.secret, DEMO_SUITE.token, DEMO_SUITE.encodingAESKey]) t.notMatch(stdout, secret, 'no suite secret printed')
  const backend = await providerBackend(t, url)
  const tickets = () => json<TicketPush[]>(fetch(`${url}/sim/suite-tickets`))

  t.equal((await post(`${url}/sim/install?corpid=${CLIENT}`)).status, 409, 'no install before the suites are connected')
  t.equal((await post(`${url}/sim/suite-ticket`)).status, 409, 'nor a push')
  t.equal((await post(`${url}/sim/suite-ticket-plan?fates=lost,twice,out-of-order`)).status, 204)
  t.equal((await post(`${url}/sim/suite-ticket-plan?fates=lost,sometimes`)).status, 400)
  t.equal((await post(`${url}/sim/suite-ticket-plan?fates=lost&suiteid=wwnosuchsuite`)).status, 404)
  t.equal((await post(`${url}/sim/connect-suites?url=not-a-url`)).status, 400)
  const refused = await post(`${url}/sim/connect-suites?url=${backend.base}/nothing-here`)
  t.equal(refused.status, 502, 'a URL that fails WeCom\'s check')
  t.match(await refused.json(), { error: /suite "wwdemosuite00001" failed WeCom's check/ })
  t.equal((await post(`${url}/sim/connect-suites?url=${backend.base}/wecom/suite/callback`)).status, 204)

  // lost, twice, out-of-order, then on time: the second and third delivered pushes share a
  // TimeStamp, and the held one comes after the newer one that overtook it.
  const timed = await until('the planned pushes', tickets, (pushes) => pushes.length >= 5)
  t.ok(timed.every(({ acknowledged }) => acknowledged), 'each acknowledged by the plugin')
  t.equal(timed[0]!.timestamp, timed[1]!.timestamp, 'twice: the same push again')
  t.ok(timed[3]!.timestamp < timed[2]!.timestamp, `out of order: ${timed.map(({ timestamp }) => timestamp).join(', ')}`)

  const now = await json<TicketPush>(post(`${url}/sim/suite-ticket`))
  t.same(Object.keys(now).sort(), ['acknowledged', 'status', 'timestamp'], 'no ticket in the answer')
  t.match(now, { acknowledged: true, status: 200 })
  const late = await json<TicketPush>(post(`${url}/sim/suite-ticket?age=600`))
  t.ok(late.acknowledged && Math.abs(late.timestamp + 600 - Date.now() / 1000) < 60, `dated ten minutes back: ${late.timestamp}`)
  const again = await json<TicketPush>(post(`${url}/sim/suite-ticket?again=1`))
  // The last push is the late one, or a timed one that came in between.
  t.ok((await tickets()).filter(({ timestamp }) => timestamp === again.timestamp).length >= 2, 'again: the last push once more')
  t.equal((await post(`${url}/sim/suite-ticket?age=-1`)).status, 400)

  t.match(await json(post(`${url}/sim/install?corpid=${CLIENT}`)), { pushed: 'create_auth', acknowledged: true, status: 200 })
  t.same((await backend.app.wecom.corps()).map(({ suiteId, corpId }) => ({ suiteId, corpId })), [{ suiteId: DEMO_SUITE.suiteId, corpId: CLIENT }])
  const login = await backend.login('sunqi')
  t.equal(login.statusCode, 200, login.body)
  const token = login.json().access_token as string
  t.match((await backend.me(token)).json(), { userid: 'sunqi', corpid: CLIENT, suiteId: DEMO_SUITE.suiteId })
  t.match(await json(post(`${url}/sim/reset-permanent-code?corpid=${CLIENT}`)), { pushed: 'reset_permanent_code', acknowledged: true })
  t.equal((await backend.me(token)).statusCode, 200, 'a new permanent code: the session lives on')

  t.match(await json(post(`${url}/sim/uninstall?corpid=${CLIENT}`)), { pushed: 'cancel_auth', acknowledged: true })
  t.equal((await backend.me(token)).json().code, 'WECOM_TOKEN_REVOKED', 'the session died with the uninstall')
  t.equal((await backend.login('sunqi')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'and the corp\'s logins are refused')
  t.equal((await post(`${url}/sim/uninstall?corpid=${CLIENT}`)).status, 404, 'not installed')
  t.equal((await post(`${url}/sim/install?corpid=wwnosuchcorp`)).status, 404)
  t.equal((await post(`${url}/sim/install`)).status, 400, 'corpid is required')
  t.equal((await post(`${url}/sim/install?corpid=${CLIENT}&suiteid=wwnosuchsuite`)).status, 404)

  // The request log masks the service endpoints' credentials too, in the query where a client may put them.
  const planted = { suite_secret: 'PLANTED-SUITE-SECRET', suite_ticket: 'PLANTED-SUITE-TICKET', auth_code: 'PLANTED-AUTH-CODE', permanent_code: 'PLANTED-PERMANENT-CODE', suite_access_token: 'PLANTED-SUITE-TOKEN' }
  await post(`${url}/cgi-bin/service/get_corp_token?${new URLSearchParams(planted)}`)
  const log = await json<Array<{ endpoint: string, query: Record<string, string> }>>(fetch(`${url}/sim/requests`))
  for (const value of Object.values(planted)) t.notMatch(JSON.stringify(log), value, `${value} masked`)
  t.match(log.at(-1), { endpoint: 'service/get_corp_token', query: { suite_secret: '***', suite_ticket: '***', auth_code: '***', permanent_code: '***', suite_access_token: '***' } })
  const calls = log.filter(({ endpoint }) => endpoint.startsWith('service/') && endpoint !== 'service/get_suite_token')
  t.ok(calls.length >= 3, 'the plugin\'s service calls are logged')
  t.ok(calls.every(({ query }) => query.suite_access_token === '***'), 'with the suite_access_token masked')

  cli.child.kill('SIGTERM')
  t.same(await cli.exited, [0, null])
})

t.test('--members with suites of one\'s own; --suite-callback connects them at start', async (t) => {
  const suites: Suite[] = [{ ...DEMO_SUITE, suiteId: 'wwsuiteone' }, { ...DEMO_SUITE, suiteId: 'wwsuitetwo', kind: 'custom' }]
  const file = join(t.testdir({
    'members.json': JSON.stringify({ corps: [{ corpId: 'wwone', secret: 's1', members: [{ userid: 'alice' }] }], provider: { corpId: 'wwprov' }, suites })
  }), 'members.json')
  // Pushes alone: the backend's WeCom calls are not needed, so it can listen before the CLI does.
  const backend = await providerBackend(t, 'http://127.0.0.1:9', { provider: 'wwprov', suites })
  const callback = `${backend.base}/wecom/suite/callback`
  const cli = await startCli(t, ['--port', '0', '--members', file, '--suite-callback', callback])
  t.match(cli.output().stdout, 'provider wwprov: third-party suite wwsuiteone, custom suite wwsuitetwo; a suite_ticket every 600 s to each once connected')
  t.match(cli.output().stdout, `suites connected to ${callback}`)
  const first = await until('the first timed push', () => json<TicketPush[]>(fetch(`${cli.url!}/sim/suite-tickets?suiteid=wwsuitetwo`)), (pushes) => pushes.length > 0)
  t.match(first, [{ acknowledged: true }], 'the first timed push, at once')
  t.equal((await fetch(`${cli.url!}/sim/suite-tickets`)).status, 400, 'two suites: suiteid is required')
  cli.child.kill('SIGTERM')
  t.same(await cli.exited, [0, null])
})

t.test('--members: corps from a file, the demo provider kept; a --suite-callback that fails its check is said; SIGINT stops it too', async (t) => {
  const file = join(t.testdir({
    'members.json': JSON.stringify([
      { corpId: 'wwone', secret: 's1', members: [{ userid: 'alice' }] },
      { corpId: 'wwtwo', secret: 's2', members: [{ userid: 'bob', visible: false }] }
    ])
  }), 'members.json')
  const cli = await startCli(t, ['--port', '0', '--members', file, '--suite-callback', 'http://127.0.0.1:9/wecom/suite/callback'])
  t.match(cli.output().stdout, 'corp wwone: alice')
  t.match(cli.output().stdout, 'provider wwdemoprovider01: third-party suite wwdemosuite00001')
  t.match(cli.output().stdout, 'suites not connected: WeCom simulator: the command callback URL of suite "wwdemosuite00001" failed WeCom\'s check (no answer)')
  t.match(cli.output().stdout, 'corp wwtwo: bob (outside the visible range)')
  t.equal((await post(`${cli.url!}/sim/code?corpid=wwtwo&userid=bob`)).status, 200)
  cli.child.kill('SIGINT')
  t.same(await cli.exited, [0, null], 'exits 0 on SIGINT')
})

t.test('a bad members file or port: a message and exit code 1', async (t) => {
  const dir = t.testdir({ 'suites.json': JSON.stringify({ corps: [{ corpId: 'wwone', secret: 's1' }], suites: [DEMO_SUITE] }) })
  for (const args of [['--port', '0', '--members', '/nonexistent/members.json'], ['--port', '99999'], ['--port', '0', '--suite-ticket-every', '-1'], ['--port', '0', '--members', join(dir, 'suites.json')]]) {
    const cli = await startCli(t, args)
    t.same(await cli.exited, [1, null], args.join(' '))
    t.match(cli.output().stderr, 'fastify-wecom-auth-simulator: ')
  }
})

t.test('a members file that is not JSON: said without quoting it, whose text may hold secrets', async (t) => {
  const file = join(t.testdir({ 'members.json': '[{ "corpId": "wwone", "encodingAESKey": ["CORP-SECRET-VALUE-123",] }]' }), 'members.json')
  const cli = await startCli(t, ['--port', '0', '--members', file])
  t.same(await cli.exited, [1, null])
  t.match(cli.output().stderr, 'members.json: not valid JSON')
  t.notMatch(cli.output().stderr, 'ALUE-123', 'no part of the file (JSON.parse quotes the text before a stray comma)')
})
