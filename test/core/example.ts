import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { buildExampleServer, connectSimulator, DEMO_CORP_ID, instructions } from '../../examples/app.js'
import { childEnv } from '../helpers/children.js'

t.test('the example server on its embedded simulator: code, login, protected route, decrypt', async (t) => {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  t.ok(sim, 'no WeCom credentials: the simulator plays WeCom')
  const code = (await app.inject({ url: '/dev/code?userid=zhangsan' })).body
  const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })
  t.equal(login.statusCode, 200)
  const authorization = `Bearer ${login.json().access_token}`
  t.same((await app.inject({ url: '/api/me', headers: { authorization } })).json(), { user: { userid: 'zhangsan', corpid: 'wwdemo0000000001' } })
  const encrypted = (await app.inject({ url: '/dev/encrypted-mobile?userid=zhangsan' })).json()
  const mobile = await app.inject({ method: 'POST', url: '/api/profile/mobile', headers: { authorization }, payload: encrypted })
  t.same(mobile.json(), { mobile: '13800000000' })
  t.equal((await app.inject({ url: '/api/me' })).statusCode, 401)
  const lisi = (await app.inject({ url: '/dev/code?userid=lisi' })).body
  t.equal((await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: lisi } })).statusCode, 403)
})

t.test('the example\'s off-boarding: a member deleted in the simulator loses the session at once', async (t) => {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  await connectSimulator(sim!, await app.listen({ port: 0, host: '127.0.0.1' }))
  const code = (await app.inject({ url: '/dev/code?userid=zhangsan' })).body
  const { access_token: token } = (await app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })).json()
  const authorization = `Bearer ${token}`
  t.equal((await app.inject({ url: '/api/me', headers: { authorization } })).statusCode, 200)
  t.match((await app.inject({ method: 'POST', url: '/dev/remove?userid=zhangsan' })).json(), { acknowledged: true, event: { ChangeType: 'delete_user' } })
  t.equal((await app.inject({ url: '/api/me', headers: { authorization } })).json().code, 'WECOM_TOKEN_REVOKED')
})

t.test('with WeCom credentials in the environment there is no simulator and no /dev route', async (t) => {
  const { app, sim } = await buildExampleServer({ WECOM_CORP_ID: 'wwreal', WECOM_SECRET: 's', JWT_SECRET: 'j'.repeat(32) }, false)
  t.teardown(() => app.close())
  t.equal(sim, undefined)
  t.equal((await app.inject({ url: '/dev/code' })).statusCode, 404)
  t.equal((await app.inject({ url: '/' })).statusCode, 404, 'nor the playground')
})

t.test('npm start prints the commands to paste, against the address it listens on', async (t) => {
  const text = instructions('http://127.0.0.1:3000')
  t.match(text, 'Playground: open http://127.0.0.1:3000/ in a browser')
  t.match(text, "curl -s 'http://127.0.0.1:3000/dev/code?userid=zhangsan'")
  t.match(text, 'http://127.0.0.1:3000/wecom/login')
  t.match(text, 'curl -s http://127.0.0.1:3000/api/me -H "authorization: Bearer $TOKEN"')
  t.match(text, "curl -s -X POST 'http://127.0.0.1:3000/dev/remove?userid=zhangsan'")
  t.match(text, "curl -s -X POST 'http://127.0.0.1:3000/dev/restore?userid=zhangsan'")
})

t.test('the printed curl flow runs twice in a row: its last step puts the removed member back', {
  skip: existsSync('/usr/bin/curl') || existsSync('/bin/curl') ? false : 'no curl to run the printed commands with'
}, async (t) => {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await connectSimulator(sim!, base)
  // The commands as printed, pasted into a shell: every line that is not a comment or prose.
  const commands = instructions(base).split('\n').filter((line) => /^(CODE=|TOKEN=|curl )/.test(line))
  t.ok(commands.length >= 5, commands.join('\n'))
  const env = childEnv({ PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` })
  for (const run of ['first', 'second']) {
    const { stdout } = await promisify(execFile)('bash', ['-c', commands.join('\n')], { env, timeout: 60_000 })
    t.match(stdout, '{"user":{"userid":"zhangsan"', `${run} run: logged in, the protected route answers`)
    t.match(stdout, '"code":"WECOM_TOKEN_REVOKED"', `${run} run: the removal ended the session`)
  }
  t.equal((await app.inject({ url: '/dev/members' })).json()[0].members[0].note, undefined, 'zhangsan is listed as he started')
})

t.test('the playground lists the simulator\'s directory as it is now, and /dev/restore undoes a removal', async (t) => {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  const notes = async () => Object.fromEntries((await app.inject({ url: '/dev/members' })).json()[0].members.map(({ userid, note }: { userid: string, note?: string }) => [userid, note ?? 'active']))
  t.same(await notes(), { zhangsan: 'active', lisi: 'outside the visible range', wangwu: 'disabled' })
  await sim!.removeMember(DEMO_CORP_ID, 'zhangsan')
  sim!.setMember(DEMO_CORP_ID, { userid: 'newcomer' })
  t.same(await notes(), { zhangsan: 'removed', lisi: 'outside the visible range', wangwu: 'disabled', newcomer: 'active' })
  t.equal((await app.inject({ url: '/dev/code?userid=zhangsan' })).statusCode, 404, 'a removed member gets no code')
  const restored = await app.inject({ method: 'POST', url: '/dev/restore?userid=zhangsan' })
  t.match(restored.json(), { restored: { userid: 'zhangsan', name: '张三' } })
  t.equal((await app.inject({ url: '/dev/code?userid=zhangsan' })).statusCode, 200)
  t.equal((await notes()).zhangsan, 'active')
  t.equal((await app.inject({ method: 'POST', url: '/dev/restore?userid=newcomer' })).statusCode, 404, 'only a demo member is restored')
})

t.test('every route of the example answers bad input with a 4xx, never a 500', async (t) => {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  await connectSimulator(sim!, await app.listen({ port: 0, host: '127.0.0.1' }))
  const code = (await app.inject({ url: '/dev/code?userid=zhangsan' })).body
  const authorization = `Bearer ${(await app.inject({ method: 'POST', url: '/wecom/login', payload: { code } })).json().access_token}`
  const json = { 'content-type': 'application/json' }
  const cases: Array<{ method?: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: string }> = [
    { url: '/dev/code?userid=nobody' },
    { url: '/dev/code?userid=' },
    { url: '/dev/code?corpid=wwnotademo&userid=zhangsan' },
    { url: `/dev/code?userid=${'x'.repeat(65)}` },
    { url: '/dev/encrypted-mobile?userid=lisi' }, // no code yet: no session_key to encrypt with
    { url: '/dev/encrypted-mobile?userid=nobody' },
    { method: 'POST', url: '/dev/remove?userid=nobody' },
    { method: 'POST', url: '/dev/disable?corpid=&userid=zhangsan' },
    { method: 'POST', url: '/dev/restore?userid=nobody' },
    { method: 'POST', url: '/dev/restore?corpid=wwnotademo&userid=zhangsan' },
    { url: '/dev/wecom-calls?after=-1' },
    { url: '/dev/wecom-calls?after=x' },
    { url: '/api/me', headers: { authorization: 'Bearer not-a-jwt' } },
    { method: 'POST', url: '/api/profile/mobile', headers: { authorization, ...json }, payload: '{"encryptedData":"AAAA","iv":"AAAA"}' },
    { method: 'POST', url: '/api/profile/mobile', headers: { authorization, ...json }, payload: '{"encryptedData":1}' },
    { method: 'POST', url: '/api/profile/mobile', headers: { authorization, ...json }, payload: '{' },
    { method: 'POST', url: '/api/profile/mobile', headers: { authorization, ...json }, payload: 'null' },
    { method: 'POST', url: '/wecom/login', headers: json, payload: '{"code":""}' },
    { method: 'POST', url: '/wecom/refresh', headers: json, payload: '{"refresh_token":"nope"}' },
    { method: 'POST', url: '/wecom/logout', headers: json, payload: '[]' }
  ]
  for (const { method = 'GET', url, headers, payload } of cases) {
    const response = await app.inject({ method, url, headers, payload })
    t.ok(response.statusCode >= 400 && response.statusCode < 500, `${method} ${url.slice(0, 60)} ${payload ?? ''}: ${response.statusCode}`)
  }
})
