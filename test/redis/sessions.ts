import { Redis } from 'ioredis'
import t from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, CORP_B, JWT_SECRET, SECRET_A, SECRET_B, simulatorCorps, startSimulator } from '../helpers/setup.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  let prefixes = 0
  // Each test on keys of its own, so that none sees another's sessions or shared token.
  const store = () => ({ redis: redis.url, keyPrefix: `sessions-${++prefixes}:` })

  t.test('refresh rotates the token; reusing a rotated one outside the grace revokes the whole session', async (t) => {
    const a = await redisApp(t, sim, store(), { session: { reuseGrace: 0 } })
    const login = await a.login('zhangsan')
    t.equal(login.statusCode, 200)
    const first = login.json()
    t.type(first.refresh_token, 'string')

    const refreshed = await a.refresh(first.refresh_token)
    t.equal(refreshed.statusCode, 200)
    const second = refreshed.json()
    t.not(second.refresh_token, first.refresh_token, 'a new refresh token')
    t.equal((await a.me(second.access_token)).statusCode, 200)

    const reuse = await a.refresh(first.refresh_token)
    t.equal(reuse.statusCode, 401)
    t.equal(reuse.json().code, 'WECOM_REFRESH_INVALID')
    const after = await a.refresh(second.refresh_token)
    t.equal(after.statusCode, 401, 'the newest refresh token died with the session')
    t.equal(after.json().code, 'WECOM_REFRESH_INVALID')
    const me = await a.me(second.access_token)
    t.equal(me.statusCode, 401)
    t.equal(me.json().code, 'WECOM_TOKEN_REVOKED')
    t.equal((await a.me(first.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  })

  t.test('without a grace, two refreshes racing with one token: exactly one wins', async (t) => {
    const a = await redisApp(t, sim, store(), { session: { reuseGrace: 0 } })
    const { refresh_token: token } = (await a.login('zhangsan')).json()
    const answers = await Promise.all([a.refresh(token), a.refresh(token)])
    t.same(answers.map((answer) => answer.statusCode).sort(), [200, 401])
  })

  t.test('logout with the bearer token ends the session', async (t) => {
    const a = await redisApp(t, sim, store())
    const { access_token: access, refresh_token: refresh } = (await a.login('zhangsan')).json()
    const logout = await a.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${access}` } })
    t.equal(logout.statusCode, 204)
    const me = await a.me(access)
    t.equal(me.statusCode, 401)
    t.equal(me.json().code, 'WECOM_TOKEN_REVOKED')
    const again = await a.refresh(refresh)
    t.equal(again.statusCode, 401)
    t.equal(again.json().code, 'WECOM_REFRESH_INVALID')
  })

  t.test('revokeUser on one instance: the other refuses within a second', async (t) => {
    const keys = store()
    const a = await redisApp(t, sim, keys)
    const b = await redisApp(t, sim, keys)
    const phone = (await a.login('zhangsan')).json()
    const laptop = (await b.login('zhangsan')).json()
    const other = (await a.login('zhaoliu', CORP_B)).json()
    t.equal((await b.me(phone.access_token)).statusCode, 200)

    const started = Date.now()
    await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
    const refused = await eventually(1000 - (Date.now() - started), async () => (await b.me(phone.access_token)).statusCode === 401)
    t.ok(refused, `B refused within ${Date.now() - started} ms`)
    t.equal((await b.me(phone.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
    t.equal((await b.me(laptop.access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'every session of the member')
    t.equal((await a.me(laptop.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
    t.equal((await b.refresh(laptop.refresh_token)).statusCode, 401)
    t.equal((await b.me(other.access_token)).statusCode, 200, 'other members keep their sessions')
  })

  t.test('sessions and revocations outlive an app restart', async (t) => {
    const keys = store()
    const a = await redisApp(t, sim, keys)
    const kept = (await a.login('zhangsan')).json()
    const ended = (await a.login('zhangsan')).json()
    await a.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: ended.refresh_token } })
    await a.close()

    const b = await redisApp(t, sim, keys)
    const refreshed = await b.refresh(kept.refresh_token)
    t.equal(refreshed.statusCode, 200, 'a session made before the restart refreshes after it')
    t.equal((await b.me(refreshed.json().access_token)).statusCode, 200)
    const me = await b.me(ended.access_token)
    t.equal(me.statusCode, 401, 'a session ended before the restart stays ended')
    t.equal(me.json().code, 'WECOM_TOKEN_REVOKED')
  })

  t.test('no secret in any key, and refresh tokens only as hashes', async (t) => {
    const keys = store()
    // Its own simulator: the session_key looked for below is the member's latest.
    const sim = await startSimulator(t)
    const a = await redisApp(t, sim, keys)
    const issued = (await a.login('zhangsan')).json()
    const refreshed = (await a.refresh(issued.refresh_token)).json()
    const inspector = new Redis(redis.url)
    t.teardown(() => inspector.quit())
    const names = await inspector.keys(`${keys.keyPrefix}*`)
    t.ok(names.length > 0)
    const values = await Promise.all(names.map(async (name) => {
      const type = await inspector.type(name)
      if (type === 'string') return await inspector.get(name)
      return (type === 'set' ? await inspector.smembers(name) : await inspector.zrange(name, '0', '-1')).join(',')
    }))
    const dump = [...names, ...values].join('\n')
    for (const secret of [SECRET_A, SECRET_B, JWT_SECRET, issued.refresh_token, refreshed.refresh_token, sim.sessionKey(CORP_A, 'zhangsan')!]) {
      t.notOk(dump.includes(secret), 'a secret is not stored in Redis')
    }
    t.notOk(names.some((name) => name.includes(issued.access_token)), 'no token in a key')
  })
}
