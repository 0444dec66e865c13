import t, { type Test } from 'tap'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, startSimulator } from '../helpers/setup.js'

const APPID = 'wx1234567890abcdef'

/**
 * Two logins of one member overlap, and the one WeCom answered first finishes last. `authorize`
 * runs after both WeCom calls of a login: holding the first login there makes the order certain,
 * whatever the machine's speed.
 */
async function overlappingLogins (t: Test, store: Parameters<typeof redisApp>[2]): Promise<void> {
  // Its own simulator: the data below is sealed with the member's latest session_key there.
  const sim = await startSimulator(t)
  let release: () => void = () => {}
  let hold: Promise<void> | undefined = new Promise((resolve) => { release = resolve })
  let held = false
  const authorize = async () => {
    const gate = hold
    hold = undefined
    if (gate !== undefined) {
      held = true
      await gate
    }
    return true
  }
  const a = await redisApp(t, sim, store, { authorize, miniprogramAppId: APPID }, (app) => {
    app.post('/api/mobile', { onRequest: app.wecom.authenticate }, async (request) => app.wecom.decrypt(request, request.body))
  })
  const older = a.login('zhangsan')
  t.ok(await eventually(5000, async () => held), 'the first login got its session_key and waits')
  const newer = await a.login('zhangsan')
  t.equal(newer.statusCode, 200, 'the second login, answered later by WeCom, finishes first')
  release()
  t.equal((await older).statusCode, 200, 'the first finishes last')

  const payload = sim.encryptUserInfo(CORP_A, 'zhangsan', { mobile: '13800000000' }, APPID)
  for (const login of [newer, await older]) {
    const res = await a.app.inject({
      method: 'POST', url: '/api/mobile', headers: { authorization: `Bearer ${login.json().access_token}` }, payload
    })
    t.equal(res.statusCode, 200, 'data made with the newest session_key decrypts')
    t.equal(res.json().mobile, '13800000000')
  }
}

t.test('the session_key of the latest WeCom answer wins: in-process store', (t) => overlappingLogins(t, { redis: false }))

t.test('the session_key of the latest WeCom answer wins: Redis store', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  await overlappingLogins(t, { redis: redis.url, keyPrefix: 'session-key:' })
})
