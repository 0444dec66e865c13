import t from 'tap'
import { UserForbiddenError, type WecomMember } from '../../src/index.js'
import { CORP_A, CORP_B, setup } from '../helpers/setup.js'

type Call = [string, WecomMember | undefined, string | undefined, boolean]

function recorder () {
  const calls: Call[] = []
  const hook = (name: string) => async (member: WecomMember | undefined, sid: string | undefined, request?: unknown) => {
    calls.push([name, member, sid, request !== undefined])
  }
  return { calls, hooks: { onLogin: hook('onLogin'), onRefresh: hook('onRefresh'), onLogout: hook('onLogout'), onRevoke: hook('onRevoke') } }
}

t.test('hooks hear of logins, refreshes, logouts and revocations, with member, sid and request', async (t) => {
  const { calls, hooks } = recorder()
  const h = await setup(t, { hooks }, {}, (app) => {
    app.get('/api/session', { onRequest: app.wecom.authenticate }, async (request) => ({ session: request.wecomSession }))
    app.get('/api/open', async (request) => ({ session: request.wecomSession, claims: request.wecomClaims, user: request.wecomUser }))
  })
  const login = (await h.login('zhangsan')).json()
  const auth = { authorization: `Bearer ${login.access_token}` }
  const { session } = (await h.app.inject({ url: '/api/session', headers: auth })).json()
  t.match(session, { sid: String, iat: Number, exp: Number })
  t.equal(session.exp - session.iat, 900)
  t.same((await h.app.inject({ url: '/api/open', headers: auth })).json(), { session: null, claims: null, user: null }, 'null without authenticate')
  t.match(calls.shift(), ['onLogin', { userid: 'zhangsan', corpid: CORP_A, name: '张三' }, session.sid, true])

  const renewed = (await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: login.refresh_token } })).json()
  t.match(calls.shift(), ['onRefresh', { userid: 'zhangsan' }, session.sid, true])
  await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: login.refresh_token } })
  t.same(calls, [], 'a retry within the grace is no new refresh')

  await h.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${renewed.access_token}` } })
  t.match(calls.shift(), ['onLogout', { userid: 'zhangsan', corpid: CORP_A }, session.sid, true])
  const other = (await h.login('zhangsan')).json()
  calls.length = 0
  await h.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: other.refresh_token } })
  t.match(calls.shift(), ['onLogout', { userid: 'zhangsan', name: '张三' }, String, true])

  const third = (await h.login('zhangsan')).json()
  const { session: s3 } = (await h.app.inject({ url: '/api/session', headers: { authorization: `Bearer ${third.access_token}` } })).json()
  calls.length = 0
  await h.app.wecom.revokeSession(s3.sid)
  t.match(calls.shift(), ['onRevoke', { userid: 'zhangsan' }, s3.sid, false])
  await h.app.wecom.revokeUser(CORP_A, 'zhangsan')
  t.match(calls.shift(), ['onRevoke', { userid: 'zhangsan', corpid: CORP_A }, undefined, false])
  await h.app.wecom.login(h.sim.issueCode(CORP_A, 'zhangsan'))
  t.match(calls.shift(), ['onLogin', { userid: 'zhangsan' }, String, false], 'the decorator, without a request')
})

t.test('a hook that fails is logged; one that throws our error is the answer', async (t) => {
  let refuse = false
  const h = await setup(t, {
    hooks: {
      onLogin: async (member) => {
        if (refuse) throw new UserForbiddenError()
        if (member.userid === 'zhangsan') throw new Error('audit database down')
      }
    }
  })
  t.equal((await h.login('zhangsan')).statusCode, 200, 'a failing audit hook does not fail the login')
  t.ok(h.logs.records.some((r) => r.level === 50 && r.hook === 'onLogin'), 'logged at error')
  refuse = true
  const refused = await h.login('zhaoliu', CORP_B, { corpId: CORP_B })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'WECOM_USER_FORBIDDEN')
})

t.test('extendClaims: the host\'s claims ride in the token and come back verified and frozen', async (t) => {
  const h = await setup(t, {
    extendClaims: async (member, request) => ({ role: member.userid === 'zhangsan' ? 'admin' : 'staff', via: request === undefined ? 'decorator' : 'route', tags: ['a'] })
  }, {}, (app) => {
    app.get('/api/claims', { onRequest: app.wecom.authenticate }, async (request) => {
      let frozen = false
      try {
        (request.wecomClaims as { role: string }).role = 'root'
      } catch {
        frozen = true
      }
      return { claims: request.wecomClaims, frozen }
    })
  })
  const login = (await h.login('zhangsan')).json()
  const res = (await h.app.inject({ url: '/api/claims', headers: { authorization: `Bearer ${login.access_token}` } })).json()
  t.same(res, { claims: { role: 'admin', via: 'route', tags: ['a'] }, frozen: true })
  const renewed = (await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: login.refresh_token } })).json()
  t.match((await h.app.inject({ url: '/api/claims', headers: { authorization: `Bearer ${renewed.access_token}` } })).json(), { claims: { role: 'admin' } }, 'again on refresh')
  const viaDecorator = await h.app.wecom.login(h.sim.issueCode(CORP_A, 'zhangsan'))
  t.match((await h.app.inject({ url: '/api/claims', headers: { authorization: `Bearer ${viaDecorator.access_token}` } })).json(), { claims: { via: 'decorator' } })
})

t.test('reserved claim names and non-objects are refused at the call', async (t) => {
  for (const [returned, what] of [[{ sid: 'mine' }, 'the reserved claim sid'], [{ exp: 1 }, 'the reserved claim exp'], [['x'], 'something other than an object'],
    [JSON.parse('{"role":"user","__proto__":{"isAdmin":true}}'), 'the claim __proto__']] as const) {
    const h = await setup(t, { extendClaims: async () => returned as Record<string, unknown> })
    const res = await h.login('zhangsan')
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'WECOM_CLAIMS_INVALID')
    t.match(res.json().message, what)
    // A bug of the host's: in the log, as Fastify's own handler would put a 500.
    t.ok(h.logs.records.some((r) => r.level === 50 && (r.err as { code?: string } | undefined)?.code === 'WECOM_CLAIMS_INVALID'), 'logged at error level')
  }
})

t.test('options: hooks, extendClaims and callbacks are checked at registration', async (t) => {
  const { resolveOptions } = await import('../../src/options.js')
  const base = { corps: [{ corpId: 'ww1', secret: 's' }], jwt: { secret: 'x'.repeat(32) } }
  t.throws(() => resolveOptions({ ...base, hooks: { onLogn: async () => {} } }), /unknown option "hooks\.onLogn" \(hooks takes onLogin, onRefresh, onLogout, onRevoke, onCorpAuthorized, onCorpCancelled\)/)
  t.throws(() => resolveOptions({ ...base, hooks: { onLogin: 'no' } }), /hooks.onLogin must be a function/)
  t.throws(() => resolveOptions({ ...base, extendClaims: {} }), /extendClaims must be a function/)
  t.throws(() => resolveOptions({ ...base, onEvent: 1 }), /onEvent must be a function/)
  t.throws(() => resolveOptions({ ...base, corps: [{ corpId: 'ww1', secret: 's', callback: { token: 't', encodingAESKey: 'short' } }] }),
    /corps\[0\].callback.encodingAESKey must be the 43 characters WeCom generates/)
  t.throws(() => resolveOptions({ ...base, corps: [{ corpId: 'ww1', secret: 's', callback: { encodingAESKey: 'a'.repeat(43) } }] }),
    /corps\[0\].callback.token is required/)
  const options = { ...base, corps: [{ corpId: 'ww1', secret: 's', callback: { token: 't', encodingAESKey: 'a'.repeat(43) } }] }
  const copy = structuredClone(options)
  resolveOptions(options)
  t.same(options, copy, 'not mutated')
})
