import t from 'tap'
import { KEY_A, TOKEN_A, callbackCorps } from '../helpers/callback.js'
import { eventually, redisApp, startRedis } from '../helpers/redis.js'
import { CORP_A, startSimulator, WEB_A, WEB_HOST } from '../helpers/setup.js'
import { browserGet, webLogin } from '../helpers/web.js'

// One member, one session list, one off-boarding (issue 18): the mini program's, a page's inside
// WeCom and the PC browser's sessions all end on WeCom's event, on every instance sharing Redis.

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('a member deleted in WeCom: mini-program, H5 and PC sessions refused on both instances within 1 s', async (t) => {
    const sim = await startSimulator(t)
    const store = { redis: redis.url, keyPrefix: 'surfaces:' }
    const [corpA, ...others] = callbackCorps()
    const options = { corps: [{ ...corpA!, web: WEB_A }, ...others], web: { origins: [`http://${WEB_HOST}`], cookie: { secure: false } } }
    const a = await redisApp(t, sim, store, options)
    const b = await redisApp(t, sim, store, options)
    const address = await a.app.listen({ port: 0, host: '127.0.0.1' })
    await sim.setCallback(CORP_A, { url: `${address}/wecom/callback`, token: TOKEN_A, encodingAESKey: KEY_A })

    const miniprogram = (await a.login('zhangsan')).json().access_token as string
    const h5 = (await webLogin({ get: browserGet(b.app) }, 'via=oauth')).cookies.get('wecom_access')!.value
    const pc = (await webLogin({ get: browserGet(a.app) }, 'via=sso')).cookies.get('wecom_access')!.value
    const tokens = { miniprogram, h5, pc }
    for (const instance of [a, b]) {
      for (const [surface, token] of Object.entries(tokens)) t.equal((await instance.me(token)).statusCode, 200, `${surface} passes before`)
    }
    for (const instance of [a, b]) {
      t.same((await instance.app.wecom.sessions(CORP_A, 'zhangsan')).map((s) => s.surface), ['miniprogram', 'h5', 'web'], 'one list, whichever instance asks')
    }
    const started = Date.now()
    t.equal((await sim.removeMember(CORP_A, 'zhangsan'))?.acknowledged, true)
    for (const [name, instance] of [['the instance WeCom called', a], ['the other', b]] as const) {
      for (const [surface, token] of Object.entries(tokens)) {
        // Pub/sub on loopback takes milliseconds; the bound is a second.
        const refused = await eventually(1000, async () => (await instance.me(token)).statusCode === 401)
        t.ok(refused, `${name}: the ${surface} session refused within ${Date.now() - started} ms`)
      }
    }
    t.same(await b.app.wecom.sessions(CORP_A, 'zhangsan'), [], 'none left in the list')
  })
}
