import { Cluster } from 'ioredis'
import t from 'tap'
import type { WecomAuthOptions } from '../../src/index.js'
import { redisKeys } from '../../src/stores/redis/keys.js'
import { encryptWithSessionKey } from '../../src/testing/simulator.js'
import { oneGettokenPerCorp } from '../helpers/processes.js'
import { eventually, redisApp } from '../helpers/redis.js'
import { startCluster } from '../helpers/redis-topologies.js'
import { CORP_A, CORP_B, startSimulator } from '../helpers/setup.js'
import { threeSurfaces } from '../helpers/web.js'
import { installAcrossInstances } from '../helpers/provider-instances.js'

// The sessions and revocation contract on a Redis Cluster of three primaries that the test starts:
// given as a list of node URLs (the plugin opens the Cluster) and as an ioredis Cluster client.

const cluster = await startCluster(t)
if (cluster !== undefined) {
  const nodes = cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }))
  let prefixes = 0

  const shapes: Array<[string, () => WecomAuthOptions['store']]> = [
    ['node URLs', () => ({ redis: cluster.urls, keyPrefix: `cluster-${++prefixes}:` })],
    ['an ioredis Cluster', () => {
      const client = new Cluster(nodes)
      t.teardown(() => client.quit())
      return { redis: client, keyPrefix: `cluster-${++prefixes}:` }
    }]
  ]

  for (const [shape, store] of shapes) {
    t.test(`${shape}: login, refresh, rotation, reuse, logout`, async (t) => {
      const sim = await startSimulator(t)
      const a = await redisApp(t, sim, store(), { session: { reuseGrace: 0 } })
      const login = await a.login('zhangsan')
      t.equal(login.statusCode, 200)
      const first = login.json()
      t.type(first.refresh_token, 'string', 'the session was stored: no CROSSSLOT')
      const refreshed = await a.refresh(first.refresh_token)
      t.equal(refreshed.statusCode, 200)
      const second = refreshed.json()
      t.equal((await a.me(second.access_token)).statusCode, 200)

      t.equal((await a.refresh(first.refresh_token)).statusCode, 401, 'reuse of a rotated token')
      t.equal((await a.refresh(second.refresh_token)).statusCode, 401, 'ended the session')
      t.equal((await a.me(second.access_token)).json().code, 'WECOM_TOKEN_REVOKED')

      const other = (await a.login('zhangsan')).json()
      const out = await a.app.inject({ method: 'POST', url: '/wecom/logout', payload: { refresh_token: other.refresh_token } })
      t.equal(out.statusCode, 204)
      t.equal((await a.refresh(other.refresh_token)).statusCode, 401)
      t.equal((await a.me(other.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
    })

    t.test(`${shape}: revokeUser on one instance, the other refuses within a second; decrypt`, async (t) => {
      // Its own simulator: the session_key read below is the member's latest.
      const sim = await startSimulator(t)
      const keys = store()
      const a = await redisApp(t, sim, keys)
      const b = await redisApp(t, sim, keys, {}, (app) => {
        app.post('/api/mobile', { onRequest: app.wecom.authenticate }, async (request) => app.wecom.decrypt(request, request.body))
      })
      const ofA = (await a.login('zhangsan')).json()
      const ofB = (await b.login('zhaoliu', CORP_B)).json()
      const sessionKey = sim.sessionKey(CORP_B, 'zhaoliu')!
      const decrypted = await b.app.inject({
        method: 'POST',
        url: '/api/mobile',
        headers: { authorization: `Bearer ${ofB.access_token}` },
        payload: encryptWithSessionKey(sessionKey, { mobile: '13800000000' }, 'wx-app')
      })
      t.equal(decrypted.statusCode, 200)
      t.equal(decrypted.json().mobile, '13800000000', 'the session_key was kept on the cluster')

      t.equal((await b.me(ofA.access_token)).statusCode, 200)
      await a.app.wecom.revokeUser(CORP_A, 'zhangsan')
      t.ok(await eventually(1000, async () => (await b.me(ofA.access_token)).statusCode === 401), 'refused on the other instance')
      t.equal((await b.refresh(ofA.refresh_token)).statusCode, 401)
      t.equal((await b.me(ofB.access_token)).statusCode, 200, 'another member is untouched')
      t.equal((await a.login('zhangsan')).statusCode, 200, 'a login after the revocation works')
    })
  }

  t.test('4 processes on the Cluster: one gettoken per corp', (t) => oneGettokenPerCorp(t, JSON.stringify(cluster.urls)))

  t.test('a member deleted in WeCom: mini-program, H5 and PC sessions refused on both instances within 1 s', async (t) => {
    const sim = await startSimulator(t)
    const { a, b, tokens } = await threeSurfaces(t, sim, store())
    t.same((await b.app.wecom.sessions(CORP_A, 'zhangsan')).map((s) => s.surface), ['miniprogram', 'h5', 'web'], 'one list on the Cluster')
    t.equal((await sim.removeMember(CORP_A, 'zhangsan'))?.acknowledged, true)
    for (const [name, instance] of [['the instance WeCom called', a], ['the other', b]] as const) {
      for (const [surface, token] of Object.entries(tokens)) {
        // Pub/sub on loopback takes milliseconds; the bound is a second.
        t.ok(await eventually(1000, async () => (await instance.me(token)).statusCode === 401), `${name}: the ${surface} session refused`)
      }
    }
  })

  t.test('a key holding another type is a store error (503), never a 500', async (t) => {
    const keys = store()
    const a = await redisApp(t, await startSimulator(t), keys)
    const login = (await a.login('zhangsan')).json()
    const sid = login.refresh_token.split('.')[0]
    const inspector = new Cluster(nodes)
    t.teardown(() => inspector.quit())
    const key = redisKeys.session(keys.keyPrefix, sid)
    await inspector.del(key)
    await inspector.rpush(key, 'not', 'a', 'session')
    const res = await a.refresh(login.refresh_token)
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'WECOM_STORE_UNAVAILABLE')
    await inspector.del(key)
    await inspector.set(key, 'not json')
    t.equal((await a.refresh(login.refresh_token)).statusCode, 503)
  })

  for (const [shape, keys] of shapes) {
    t.test(`${shape}: a provider's corp installed, logged in on two instances, uninstalled: refused on both within 1 s`, async (t) => {
      await installAcrossInstances(t, keys() as Parameters<typeof installAcrossInstances>[1], cluster!.urls)
    })
  }

  function store (): { redis: string[], keyPrefix: string } {
    return { redis: cluster!.urls, keyPrefix: `cluster-${++prefixes}:` }
  }
}
