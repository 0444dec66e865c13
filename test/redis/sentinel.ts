import { Redis } from 'ioredis'
import t from 'tap'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp } from '../helpers/redis.js'
import { currentPrimary, startSentinels } from '../helpers/redis-topologies.js'
import { simulatorCorps } from '../helpers/setup.js'

// A primary, a replica and three sentinels that the test starts; the plugin is given an ioredis
// client configured for Sentinel, as the README shows. The primary is killed: after the promotion
// the plugin carries on without a restart.

const setup = await startSentinels(t)
if (setup !== undefined) {
  t.test('a failover: within 10 s of the promotion logins get refresh tokens again and earlier sessions refresh', async (t) => {
    const sim = await createWecomSimulator({ corps: simulatorCorps() })
    t.teardown(() => sim.close())
    const sentinels = setup.sentinels.map((node) => ({ host: '127.0.0.1', port: node.port }))
    const client = new Redis({ sentinels, name: setup.name })
    // The host's own client: its owner listens to its errors (here, the dead primary's).
    client.on('error', () => {})
    t.teardown(() => client.quit())
    const a = await redisApp(t, sim, { redis: client, keyPrefix: 'sentinel:' })

    const before = (await a.login('zhangsan')).json()
    t.type(before.refresh_token, 'string')
    // The session must have reached the replica before its primary dies: asynchronous replication.
    await client.wait(1, 2000)

    setup.primary.kill()
    // Sentinel notices after its 1 s down-after and promotes the replica: generous for a busy machine.
    t.ok(await eventually(30_000, async () => await currentPrimary(setup).catch(() => 0) === setup.replica.port), 'the replica was promoted')
    const promotedAt = Date.now()

    t.ok(await eventually(10_000, async () => typeof (await a.login('zhangsan')).json().refresh_token === 'string'),
      'logins get refresh tokens again')
    const refreshed = await a.refresh(before.refresh_token)
    t.equal(refreshed.statusCode, 200, 'a session from before the failover refreshes')
    t.ok(Date.now() - promotedAt < 10_000, `recovered ${Date.now() - promotedAt} ms after the promotion`)

    await a.app.wecom.revokeUser(refreshed.json().user.corpid, 'zhangsan')
    t.equal((await a.me(refreshed.json().access_token)).statusCode, 401, 'revocations work on the new primary')
  })
}
