import t from 'tap'
import { eventually, startRedis } from '../helpers/redis.js'
import { CORP_A, startSimulator } from '../helpers/setup.js'
import { threeSurfaces } from '../helpers/web.js'

// One member, one session list, one off-boarding (issue 18): the mini program's, a page's inside
// WeCom and the PC browser's sessions all end on WeCom's event, on every instance sharing Redis.

const redis = await startRedis(t)
if (redis !== undefined) {
  t.test('a member deleted in WeCom: mini-program, H5 and PC sessions refused on both instances within 1 s', async (t) => {
    const sim = await startSimulator(t)
    const { a, b, tokens } = await threeSurfaces(t, sim, { redis: redis.url, keyPrefix: 'surfaces:' })
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
