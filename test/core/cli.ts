import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import t, { type Test } from 'tap'
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

t.test('--members: corps from a file; SIGINT stops it too', async (t) => {
  const file = join(t.testdir({
    'members.json': JSON.stringify([
      { corpId: 'wwone', secret: 's1', members: [{ userid: 'alice' }] },
      { corpId: 'wwtwo', secret: 's2', members: [{ userid: 'bob', visible: false }] }
    ])
  }), 'members.json')
  const cli = await startCli(t, ['--port', '0', '--members', file])
  t.match(cli.output().stdout, 'corp wwone: alice')
  t.match(cli.output().stdout, 'corp wwtwo: bob (outside the visible range)')
  t.equal((await post(`${cli.url!}/sim/code?corpid=wwtwo&userid=bob`)).status, 200)
  cli.child.kill('SIGINT')
  t.same(await cli.exited, [0, null], 'exits 0 on SIGINT')
})

t.test('a bad members file or port: a message and exit code 1', async (t) => {
  for (const args of [['--port', '0', '--members', '/nonexistent/members.json'], ['--port', '99999']]) {
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
