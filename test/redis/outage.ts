import t from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, CORP_B, simulatorCorps } from '../helpers/setup.js'

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('Redis stopped and started again during a run', async (t) => {
    const sim = await createWecomSimulator({ corps: simulatorCorps() })
    t.teardown(() => sim.close())
    const a = await redisApp(t, sim, { redis: redis.url })
    const sharedStoreWarnings = () => a.logs.records.filter((record) =>
      record.level === 40 && /shared token store unavailable/.test(String(record.msg))).length

    const kept = (await a.login('zhangsan')).json()
    const ended = (await a.login('zhangsan')).json()
    const logout = await a.app.inject({ method: 'POST', url: '/wecom/logout', headers: { authorization: `Bearer ${ended.access_token}` } })
    t.equal(logout.statusCode, 204)

    await redis.stop()

    // Corp B's token is cold and corp A's is ended by WeCom: both go to the shared store and
    // fall back to a token of this process, again and again, with one warning for the outage.
    sim.expireTokens(CORP_A)
    for (let i = 0; i < 3; i++) {
      for (const [userid, corpId] of [['zhaoliu', CORP_B], ['zhangsan', CORP_A]]) {
        const login = await a.login(userid, corpId)
        t.equal(login.statusCode, 200, `login as ${userid} while Redis is down`)
        t.equal(login.json().refresh_token, undefined, 'without a session to refresh')
      }
      sim.expireTokens()
    }
    t.equal(sharedStoreWarnings(), 1, 'the shared token store warning is logged once')
    t.equal(a.logs.records.filter((record) => /session store unavailable/.test(String(record.msg))).length, 1,
      'and the session store warning once, not per login')

    const started = Date.now()
    const refresh = await a.refresh(kept.refresh_token)
    t.equal(refresh.statusCode, 503)
    t.equal(refresh.json().code, 'WECOM_STORE_UNAVAILABLE')
    t.ok(Number(refresh.headers['retry-after']) > 0, 'with Retry-After')
    t.ok(Date.now() - started < 1000, 'at once, not after waiting for Redis')

    t.equal((await a.me(kept.access_token)).statusCode, 200, 'valid access tokens are still accepted')
    const revoked = await a.me(ended.access_token)
    t.equal(revoked.statusCode, 401, 'a session ended before the outage stays refused')
    t.equal(revoked.json().code, 'WECOM_TOKEN_REVOKED')

    await redis.start()
    let refreshed = 0
    const recovered = await eventually(5000, async () => {
      const login = await a.login('zhangsan')
      if (login.json().refresh_token === undefined) return false
      refreshed = (await a.refresh(login.json().refresh_token)).statusCode
      return true
    })
    t.ok(recovered, 'logins start sessions again without a restart')
    t.equal(refreshed, 200, 'and they refresh')
    t.equal((await a.me(ended.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
  })
}
