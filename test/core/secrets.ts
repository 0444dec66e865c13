import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { describeRedis } from '../../src/stores/redis/connection.js'
import type { LightMyRequestResponse } from 'fastify'
import { eventXml } from '../../src/testing/envelope.js'
import { KEY_A, KEY_B, TOKEN_A, TOKEN_B, callbackCorps, connect, post, postEncrypted } from '../helpers/callback.js'
import { startRedis } from '../helpers/redis.js'
import { assertNoSecrets, seenAccessTokens } from '../helpers/secrets.js'
import { CORP_A, CORP_B, JWT_SECRET, SECRET_A, SECRET_B, setup, type Harness } from '../helpers/setup.js'

// Every branch of the plugin, run with the logger at trace level; then not one log line, error
// message or unrelated response may hold a corp secret, a WeCom access token, a session_key, a
// refresh token or an access JWT.
t.test('no secret in any log line, error message or response that is not meant to carry it', async (t) => {
  // api.timeout 2 s: the one stalled login below waits it out, and every other login must pass
  // under it, the refetches of a token included (the counts at the end): at 200 ms, a loaded
  // machine (a second npm test in a row) let a refetch run out, and fewer WeCom tokens were seen.
  const h = await setup(t, { api: { timeout: 2000 }, session: { recheckInterval: 1 } }, {}, (app) => {
    app.post('/api/mobile', { onRequest: app.wecom.authenticate }, async (request) => app.wecom.decrypt(request, request.body))
  })
  const sessionKeys = new Set<string>()
  const refreshTokens = new Set<string>()
  const accessTokens = new Set<string>()
  const responses: LightMyRequestResponse[] = []
  const wecomTokens = new Set<string>()

  const record = (res: LightMyRequestResponse) => {
    responses.push(res)
    for (const r of h.sim.requests) if (r.query.access_token !== undefined) wecomTokens.add(r.query.access_token)
    if (res.statusCode === 200 && String(res.headers['content-type']).includes('json')) {
      const body = res.json()
      if (typeof body.refresh_token === 'string') refreshTokens.add(body.refresh_token)
      if (typeof body.access_token === 'string') accessTokens.add(body.access_token)
    }
    return res
  }
  const login = async (userid: string, corpId = CORP_A, body = {}) => {
    const res = record(await h.login(userid, corpId, body))
    const key = h.sim.sessionKey(corpId, userid)
    if (key !== undefined) sessionKeys.add(key)
    return res
  }
  const post = async (url: string, payload?: object, authorization?: string) => record(await h.app.inject({
    method: 'POST', url, payload, headers: authorization === undefined ? {} : { authorization }
  }))

  const ok = (await login('zhangsan')).json()
  await login('lisi')
  await login('wangwu')
  await login('outsider', 'wwforeign00000000')
  await login('zhaoliu', CORP_B)
  await login('zhaoliu', CORP_B, { corpId: CORP_B })
  await post('/wecom/login', { code: 'a&userid=x' })
  for (const fault of [{ errcode: 42001 }, { errcode: 40014 }, { errcode: -1 }, { errcode: 45009 }, { errcode: 60020 },
    { errcode: 40001 }, { malformed: true as const }, { drop: true as const }, { timeout: true as const }]) {
    h.sim.inject('jscode2session', fault)
    h.sim.inject('user/get', fault)
    await login('zhangsan')
  }
  h.sim.inject('gettoken', { errcode: 40001 })
  h.sim.expireTokens()
  await login('zhangsan')
  await login('zhangsan')

  const renewed = (await post('/wecom/refresh', { refresh_token: ok.refresh_token })).json()
  await post('/wecom/refresh', { refresh_token: ok.refresh_token })
  await post('/wecom/refresh', { refresh_token: 'garbage' })
  const other = (await login('zhangsan')).json()
  await new Promise((resolve) => setTimeout(resolve, 1100))
  h.sim.inject('user/get', { errcode: 60011 })
  await post('/wecom/refresh', { refresh_token: other.refresh_token })
  const last = (await login('zhangsan')).json()
  record(await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${renewed.access_token}` } }))
  record(await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${last.access_token}x` } }))
  await post('/wecom/logout', { refresh_token: last.refresh_token })
  await post('/wecom/logout', undefined, `Bearer ${last.access_token}`)
  await t.rejects(h.app.wecom.login('expired-code'))

  // The reuse grace: a double tap, a retry, then reuse after a further rotation.
  const tapped = (await login('zhangsan')).json()
  await Promise.all([post('/wecom/refresh', { refresh_token: tapped.refresh_token }), post('/wecom/refresh', { refresh_token: tapped.refresh_token })])
  const retried = (await post('/wecom/refresh', { refresh_token: tapped.refresh_token })).json()
  await post('/wecom/refresh', { refresh_token: retried.refresh_token })
  await post('/wecom/refresh', { refresh_token: tapped.refresh_token })
  // Off-boarding: the not-before refuses a token issued before it, a login after it passes.
  const offboarded = (await login('zhangsan')).json()
  await h.app.wecom.revokeUser(CORP_A, 'zhangsan')
  record(await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${offboarded.access_token}` } }))
  const back = (await login('zhangsan')).json()
  // Bad input: every decorator and route refusing it.
  await post('/api/mobile', { encryptedData: 'AAAA', iv: 1 }, `Bearer ${back.access_token}`)
  await post('/api/mobile', h.sim.encryptUserInfo(CORP_A, 'zhangsan', { mobile: '1' }, 'wxotherapp'), `Bearer ${back.access_token}`)
  await post('/wecom/logout', { refresh_token: offboarded.refresh_token })
  await t.rejects(h.app.wecom.revokeUser(42 as unknown as string, 'zhangsan'))
  await t.rejects(h.app.wecom.login(42 as unknown as string))
  record(await h.app.inject({
    method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${back.access_token}`, 'content-type': 'application/json' }
  }))
  await h.app.close()

  t.ok(h.logs.lines.length > 50, `${h.logs.lines.length} log lines captured`)
  t.ok(wecomTokens.size >= 2, `${wecomTokens.size} WeCom access tokens seen`)
  t.ok(sessionKeys.size >= 3 && refreshTokens.size >= 3 && accessTokens.size >= 3)
  assertNoSecret(t, h, { wecomTokens, sessionKeys, refreshTokens, accessTokens, responses })
})

interface Seen {
  wecomTokens: Set<string>
  sessionKeys: Set<string>
  refreshTokens: Set<string>
  accessTokens: Set<string>
  responses: LightMyRequestResponse[]
}

function assertNoSecret (t: Test, h: Pick<Harness, 'logs'>, { wecomTokens, sessionKeys, refreshTokens, accessTokens, responses }: Seen): void {
  const secrets: Array<[string, Set<string>]> = [
    ['corp secret', new Set([SECRET_A, SECRET_B])],
    ['JWT secret', new Set([JWT_SECRET])],
    ['WeCom access token', wecomTokens],
    ['session_key', sessionKeys],
    ['refresh token', refreshTokens],
    ['access JWT', accessTokens]
  ]
  const everyLog = h.logs.lines.join('\n')
  for (const [kind, values] of secrets) {
    for (const value of values) {
      t.notOk(everyLog.includes(value), `no ${kind} in the logs`)
      // Only login and refresh answers carry tokens, and they carry only their own.
      for (const res of responses) {
        if (kind === 'refresh token' || kind === 'access JWT') continue
        t.notOk(res.body.includes(value), `no ${kind} in a response (${res.statusCode})`)
      }
    }
  }
  for (const res of responses.filter((r) => r.statusCode >= 400)) {
    t.notMatch(res.body, /access_token|corpsecret|session_key|cgi-bin/, `error ${res.json().code} names no secret or URL`)
  }
}

t.test('on Redis: the persistence warning and the not-before path log no secret', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  const h = await setup(t, { store: { redis: redis.url, keyPrefix: 'secrets:' } })
  // The warning, or on a machine so loaded that Redis did not answer within the store's 1 s the
  // debug line that says it could not be read: either way the path ran, and is checked below.
  t.ok(h.logs.records.some((record) => (record.level === 40 && /persists nothing/.test(String(record.msg))) ||
    (record.level === 20 && /could not read the Redis persistence/.test(String(record.msg)))), 'the persistence check was logged')
  const issued = (await h.login('zhangsan')).json()
  const renewed = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: issued.refresh_token } })
  const retried = await h.app.inject({ method: 'POST', url: '/wecom/refresh', payload: { refresh_token: issued.refresh_token } })
  await h.app.wecom.revokeUser(CORP_A, 'zhangsan')
  const refused = await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${issued.access_token}` } })
  await h.app.close()
  assertNoSecret(t, h, {
    wecomTokens: new Set(h.sim.requests.flatMap((r) => r.query.access_token === undefined ? [] : [r.query.access_token])),
    sessionKeys: new Set([h.sim.sessionKey(CORP_A, 'zhangsan')!]),
    refreshTokens: new Set([issued.refresh_token, renewed.json().refresh_token]),
    accessTokens: new Set([issued.access_token, renewed.json().access_token]),
    responses: [refused, retried]
  })
})

t.test('the callback and api() paths: no EncodingAESKey, callback Token or access token in a log, error or response', async (t) => {
  // api.timeout 1 s: the stalled message/send below waits it out twice; the calls before it, the
  // login's included, must pass under it on a loaded machine (200 ms did not always).
  const h = await setup(t, { corps: callbackCorps(), api: { timeout: 1000 }, onEvent: async () => { throw new Error('host sync failed') } })
  await connect(h.app, h.sim)
  const responses: LightMyRequestResponse[] = []
  const errors: string[] = []
  const login = (await h.login('zhangsan')).json()
  responses.push(await h.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${login.access_token}` } }))
  await h.sim.disableMember(CORP_A, 'wangwu')
  await h.sim.setVisible(CORP_B, 'zhaoliu', false)
  const delivery = await h.sim.removeMember(CORP_A, 'zhangsan')
  await h.sim.redeliver(delivery!, 'new')
  const xml = eventXml({ ToUserName: CORP_A, CreateTime: Math.floor(Date.now() / 1000), MsgType: 'event', Event: 'change_contact', ChangeType: 'delete_user', UserID: 'lisi' })
  for (const envelope of [{ token: 'wrong' }, { key: KEY_B }, { receiveId: CORP_B }, { timestamp: 1 }]) responses.push(await post(h.app, CORP_A, xml, envelope))
  responses.push(await post(h.app, CORP_A, 'not xml'))
  responses.push(await postEncrypted(h.app, CORP_A, 'AAAA'))

  const api = h.app.wecom.api()
  const capture = async (work: Promise<unknown>) => { await work.catch((error: Error) => { errors.push(JSON.stringify({ ...error, message: error.message, stack: error.stack })) }) }
  await capture(api.post('/cgi-bin/message/send', { touser: 'lisi', msgtype: 'text', text: { content: 'hi' } }))
  for (const fault of [{ errcode: 81013 }, { errcode: 42001 }, { errcode: 40014 }, { errcode: 60020 }, { malformed: true as const }, { timeout: true as const }, { drop: true as const }]) {
    h.sim.inject('message/send', fault, 2)
    await capture(api.post('/cgi-bin/message/send', { msgtype: 'text' }))
  }
  h.sim.expireTokens()
  await capture(api.get('/cgi-bin/user/get', { userid: 'lisi' }))
  await capture(api.get('/not/cgi-bin'))
  await capture(h.app.wecom.accessToken())
  await h.app.close()

  const wecomTokens = new Set<string>()
  seenAccessTokens(h.sim, wecomTokens)
  const everyError = errors.join('\n')
  t.ok(errors.length >= 8, `${errors.length} api() errors captured`)
  assertNoSecrets(t, [...h.logs.lines, everyError], responses, [
    ['EncodingAESKey', new Set([KEY_A, KEY_B])],
    ['callback Token', new Set([TOKEN_A, TOKEN_B])],
    ['WeCom access token', wecomTokens],
    ['corp secret', new Set([SECRET_A, SECRET_B])]
  ])
  t.notOk(h.logs.lines.some((line) => line.includes('<xml>') || line.includes('CDATA')), 'no decrypted or raw body in a log line')
  t.notMatch(everyError, /access_token=|https?:\/\/|127\.0\.0\.1/, 'no URL in an api() error')
})

t.test('a Redis Cluster\'s nodes given as URLs with a password are described without it', async (t) => {
  const cluster = new Cluster(['redis://:s3cret-pass@10.0.0.1:7000', 'rediss://user:pw-two@h2', 'localhost:7001', ':pw-three@h3:7002', 7003], { lazyConnect: true })
  t.teardown(() => cluster.disconnect())
  const described = describeRedis(cluster)
  t.equal(described, 'cluster 10.0.0.1:7000,h2:6379,localhost:7001,h3:7002,127.0.0.1:7003')
  for (const secret of ['s3cret-pass', 'pw-two', 'pw-three']) t.notOk(described.includes(secret), `no ${secret}`)
})
