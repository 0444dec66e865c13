import t from 'tap'
import { buildExampleServer, connectSimulator, instructions } from '../../examples/app.js'

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
