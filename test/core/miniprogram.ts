import { readFileSync } from 'node:fs'
import { compileFunction } from 'node:vm'
import t, { type Test } from 'tap'
import { buildExampleServer, connectSimulator, DEMO_CORP_ID, DEMO_CORP2_ID } from '../../examples/app.js'

// The example mini program's utils/auth.js, run as it is against the example server over real
// HTTP. Only `wx` is played: its request() does what wx.request does (JSON in, JSON parsed out,
// every HTTP status to `success`), and its qy.login() gets a code from the simulator through
// the example's /dev/code, as WeCom gives one to wx.qy.login.

const AUTH = new URL('../../examples/miniprogram/utils/auth.js', import.meta.url)

interface Exchange { method: string, path: string, status: number, code?: string }
interface Member { corpid: string, userid: string }
interface AuthModule {
  request (path: string, options?: { method?: string, data?: unknown }): Promise<any>
  logout (): Promise<void>
}

function fakeWx (base: string, member: Member) {
  const storage = new Map<string, unknown>()
  const exchanges: Exchange[] = []
  const wx = {
    getStorageSync: (key: string) => storage.get(key) ?? '',
    setStorageSync: (key: string, value: unknown) => { storage.set(key, value) },
    removeStorageSync: (key: string) => { storage.delete(key) },
    getSystemInfoSync: () => ({ environment: 'wxwork' }),
    request ({ url, method = 'GET', data, header = {}, timeout, success, fail }: any) {
      const target = new URL(url)
      if (method === 'GET' && data !== undefined) for (const [k, v] of Object.entries(data)) target.searchParams.set(k, String(v))
      fetch(target, {
        method,
        headers: { 'content-type': 'application/json', ...header },
        body: method === 'GET' || data === undefined ? undefined : JSON.stringify(data),
        signal: AbortSignal.timeout(timeout)
      }).then(async (response) => {
        const text = await response.text()
        let body: any = text
        try { body = JSON.parse(text) } catch {}
        exchanges.push({ method, path: target.pathname, status: response.status, code: body?.code })
        success({ statusCode: response.status, data: body, header: Object.fromEntries(response.headers) })
      }, (error: Error) => fail({ errMsg: `request:fail ${error.message}` }))
    },
    qy: {
      login ({ success, fail }: any) {
        fetch(`${base}/dev/code?${new URLSearchParams(member as unknown as Record<string, string>)}`)
          .then(async (response) => {
            // A member WeCom no longer has cannot open the mini program: wx.qy.login fails.
            if (!response.ok) throw new Error(`qy.login:fail ${response.status}`)
            return response.text()
          })
          .then((code) => success({ code, errMsg: 'qy.login:ok' }), (error: Error) => fail({ errMsg: error.message }))
      }
    }
  }
  return { wx, storage, exchanges }
}

/** A fresh copy of auth.js (its module state too), as a mini program gets on each launch. */
function loadAuth (base: string, wx: unknown): AuthModule {
  const module = { exports: {} as AuthModule }
  const require = (id: string) => {
    if (id === './config') return { API_BASE: base }
    throw new Error(`auth.js requires only ./config, not ${id}`)
  }
  compileFunction(readFileSync(AUTH, 'utf8'), ['module', 'exports', 'require', 'wx'], { filename: AUTH.pathname })(module, module.exports, require, wx)
  return module.exports
}

async function start (t: Test, member: Member = { corpid: DEMO_CORP_ID, userid: 'zhangsan' }) {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await connectSimulator(sim!, base)
  const device = fakeWx(base, member)
  return { app, sim: sim!, base, member, ...device, auth: loadAuth(base, device.wx) }
}

const paths = (exchanges: Exchange[]) => exchanges.map((e) => `${e.method} ${e.path} ${e.status}${e.code ? ` ${e.code}` : ''}`)

/**
 * Logged in, then the stored access token spoilt into one the server refuses, as it refuses one
 * past its expiry; the exchanges are counted afresh from there.
 */
async function withExpiredToken (t: Test) {
  const s = await start(t)
  await s.auth.request('/api/me')
  const refreshToken = s.storage.get('wecom.refreshToken')
  s.storage.set('wecom.accessToken', `${String(s.storage.get('wecom.accessToken')).slice(0, -4)}AAAA`)
  s.exchanges.length = 0
  return { ...s, refreshToken }
}

t.test('the first call logs in through wx.qy.login and keeps both tokens and the corp', async (t) => {
  const s = await start(t)
  t.same(await s.auth.request('/api/me'), { user: { userid: 'zhangsan', corpid: DEMO_CORP_ID } })
  t.same(paths(s.exchanges), ['POST /wecom/login 200', 'GET /api/me 200'])
  t.ok(s.storage.get('wecom.accessToken'))
  t.ok(s.storage.get('wecom.refreshToken'))
  t.equal(s.storage.get('wecom.corpId'), DEMO_CORP_ID)
  await s.auth.request('/api/me')
  t.equal(s.exchanges.length, 3, 'the second call reuses the session')
})

t.test('a member of the second corp: 409, one new code, logged in; the corp is remembered', async (t) => {
  const s = await start(t, { corpid: DEMO_CORP2_ID, userid: 'zhaoliu' })
  t.same(await s.auth.request('/api/me'), { user: { userid: 'zhaoliu', corpid: DEMO_CORP2_ID } })
  t.same(paths(s.exchanges), ['POST /wecom/login 409 WECOM_CORP_MISMATCH', 'POST /wecom/login 200', 'GET /api/me 200'])
  s.storage.delete('wecom.accessToken')
  s.storage.delete('wecom.refreshToken')
  s.exchanges.length = 0
  await s.auth.request('/api/me')
  t.same(paths(s.exchanges), ['POST /wecom/login 200', 'GET /api/me 200'], 'the next login names the corp: no 409')
})

t.test('concurrent 401s share one refresh, then every call is retried once', async (t) => {
  const s = await withExpiredToken(t)
  const answers = await Promise.all([1, 2, 3].map(() => s.auth.request('/api/me')))
  t.same(answers.map((a) => a.user.userid), ['zhangsan', 'zhangsan', 'zhangsan'])
  t.equal(s.exchanges.filter((e) => e.path === '/wecom/refresh').length, 1, 'one refresh for three 401s')
  t.equal(s.exchanges.filter((e) => e.path === '/wecom/login').length, 0, 'and no new login')
  t.equal(s.exchanges.filter((e) => e.code === 'WECOM_TOKEN_INVALID').length, 3)
  t.not(s.storage.get('wecom.refreshToken'), s.refreshToken, 'the refresh token rotated')
})

t.test('logout ends the session on the server even when the access token has expired', async (t) => {
  const s = await withExpiredToken(t)
  await s.auth.logout()
  t.same(paths(s.exchanges), ['POST /wecom/logout 204'])
  t.notOk(s.storage.has('wecom.accessToken'))
  t.notOk(s.storage.has('wecom.refreshToken'))
  t.equal(s.storage.get('wecom.corpId'), DEMO_CORP_ID, 'the corp, not a credential, is kept')
  const reuse = await s.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: s.refreshToken } })
  t.equal(reuse.statusCode, 401, 'the refresh token the device forgot is dead on the server too')
})

t.test('WECOM_TOKEN_REVOKED: straight to wx.qy.login (no refresh); a member disabled since gets forbidden', async (t) => {
  const s = await start(t)
  await s.auth.request('/api/me')
  // The session ends elsewhere: the same member logs out from another device holding its token.
  const ended = await s.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${String(s.storage.get('wecom.accessToken'))}` } })
  t.equal(ended.statusCode, 204)
  s.exchanges.length = 0
  t.same(await s.auth.request('/api/me'), { user: { userid: 'zhangsan', corpid: DEMO_CORP_ID } })
  t.same(paths(s.exchanges), ['GET /api/me 401 WECOM_TOKEN_REVOKED', 'POST /wecom/login 200', 'GET /api/me 200'])

  t.match((await s.app.inject({ method: 'POST', url: '/dev/disable?userid=zhangsan' })).json(), { acknowledged: true })
  s.exchanges.length = 0
  await t.rejects(s.auth.request('/api/me'), { name: 'AuthError', kind: 'forbidden', status: 403 })
  t.same(paths(s.exchanges), ['GET /api/me 401 WECOM_TOKEN_REVOKED', 'POST /wecom/login 403 WECOM_USER_FORBIDDEN'])
  t.notOk(s.storage.has('wecom.accessToken'), 'nothing of the dead session is kept')
})

t.test('a member deleted in WeCom: the session is revoked and wx.qy.login has nothing to give', async (t) => {
  const s = await start(t)
  await s.auth.request('/api/me')
  t.match((await s.app.inject({ method: 'POST', url: '/dev/remove?userid=zhangsan' })).json(), { acknowledged: true })
  s.exchanges.length = 0
  await t.rejects(s.auth.request('/api/me'), { name: 'AuthError', kind: 'failed' })
  t.same(paths(s.exchanges), ['GET /api/me 401 WECOM_TOKEN_REVOKED'])
  t.notOk(s.storage.has('wecom.refreshToken'))
})

t.test('members the server refuses: outside the visible range, disabled', async (t) => {
  for (const userid of ['lisi', 'wangwu']) {
    const s = await start(t, { corpid: DEMO_CORP_ID, userid })
    await t.rejects(s.auth.request('/api/me'), { kind: 'forbidden', code: 'WECOM_USER_FORBIDDEN' }, userid)
  }
})
