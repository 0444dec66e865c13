import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { SimulatedDelivery } from '../../src/testing/simulator.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { KEY_A, TOKEN_A, callbackCorps, deleteUserXml, post } from '../helpers/callback.js'
import { eventually, redisApp, startRedis, type RedisApp } from '../helpers/redis.js'
import { CORP_A, CORP_B, simulatorCorps } from '../helpers/setup.js'

// WeCom's event reaches one instance; every instance sharing the Redis store refuses the member's
// access tokens within a second, and the refresh answers 401. Each app listens on loopback, since
// the simulator POSTs its events over HTTP as WeCom does.

t.test('off-boarding by WeCom\'s event across two instances on one Redis', async (t) => {
  const redis = await startRedis(t)
  if (redis === undefined) return
  let prefixes = 0

  async function cluster (t: Test) {
    const sim = await createWecomSimulator({ corps: simulatorCorps() })
    t.teardown(() => sim.close())
    const store = { redis: redis!.url, keyPrefix: `callback-${++prefixes}:` }
    const revocations: string[] = []
    const options = { corps: callbackCorps(), hooks: { onRevoke: async () => { revocations.push('revoked') } } }
    const a = await redisApp(t, sim, store, options)
    const b = await redisApp(t, sim, store, options)
    const address = await a.app.listen({ port: 0, host: '127.0.0.1' })
    await sim.setCallback(CORP_A, { url: `${address}/wecom/callback`, token: TOKEN_A, encodingAESKey: KEY_A })
    return { sim, a, b, revocations }
  }

  async function offboarded (t: Test, instances: RedisApp[], tokens: { access_token: string, refresh_token: string }, deliver: () => Promise<SimulatedDelivery | undefined>) {
    for (const instance of instances) t.equal((await instance.me(tokens.access_token)).statusCode, 200, 'passes before')
    const started = Date.now()
    const delivery = await deliver()
    t.equal(delivery?.acknowledged, true, 'the callback answered success')
    for (const [name, instance] of [['the instance WeCom called', instances[0]], ['the other instance', instances[1]]] as const) {
      // Pub/sub on loopback takes milliseconds; the bound is a second.
      const refused = await eventually(1000, async () => (await instance.me(tokens.access_token)).statusCode === 401)
      t.ok(refused, `${name} refuses the access token within ${Date.now() - started} ms`)
      t.equal((await instance.me(tokens.access_token)).json().code, 'WECOM_TOKEN_REVOKED')
    }
    t.equal((await instances[1].refresh(tokens.refresh_token)).statusCode, 401, 'the refresh answers 401')
    return delivery!
  }

  t.test('a member deleted; the same event resent to either instance changes nothing more', async (t) => {
    const { sim, a, b, revocations } = await cluster(t)
    const tokens = (await b.login('zhangsan')).json()
    const delivery = await offboarded(t, [a, b], tokens, () => sim.removeMember(CORP_A, 'zhangsan'))
    t.equal(revocations.length, 1)
    // The other instance gets the resend: it has seen it through Redis.
    const address = await b.app.listen({ port: 0, host: '127.0.0.1' })
    await sim.setCallback(CORP_A, { url: `${address}/wecom/callback`, token: TOKEN_A, encodingAESKey: KEY_A })
    t.same(await sim.redeliver(delivery, 'new'), { status: 200, body: 'success' })
    t.same(await sim.redeliver(delivery, 'same'), { status: 200, body: 'success' })
    t.equal(revocations.length, 1, 'one revocation across both instances')
  })

  t.test('a member disabled', async (t) => {
    const { sim, a, b } = await cluster(t)
    const tokens = (await a.login('zhangsan')).json()
    await offboarded(t, [a, b], tokens, () => sim.disableMember(CORP_A, 'zhangsan'))
  })

  t.test('a member taken out of the visible range', async (t) => {
    const { sim, a, b } = await cluster(t)
    const tokens = (await a.login('zhangsan')).json()
    await offboarded(t, [a, b], tokens, () => sim.setVisible(CORP_A, 'zhangsan', false))
    sim.updateMember(CORP_A, 'zhangsan', { visible: true })
    const back = await b.login('zhangsan')
    t.equal(back.statusCode, 200, 'back in range: a login after the event passes')
    t.equal((await a.me(back.json().access_token)).statusCode, 200)
  })

  t.test('Redis down: the delivery answers 503 and changes nothing; WeCom\'s resend after it is back ends the session', async (t) => {
    const { sim, a, b } = await cluster(t)
    const tokens = (await a.login('zhangsan')).json()
    await redis.stop()
    const delivery = await sim.removeMember(CORP_A, 'zhangsan')
    t.equal(delivery?.acknowledged, false, 'no success: WeCom will resend')
    t.equal((await a.me(tokens.access_token)).statusCode, 200, 'nothing happened')
    await redis.start()
    t.ok(await eventually(5000, async () => (await a.login('zhaoliu', 'wwa1b2c3d4e5f60002')).json().refresh_token !== undefined), 'Redis is back')
    t.same(await sim.redeliver(delivery!, 'same'), { status: 200, body: 'success' })
    t.ok(await eventually(1000, async () => (await b.me(tokens.access_token)).statusCode === 401), 'the other instance refuses it')
  })

  t.test('a delivery handled on one instance while its resend reaches the other: 503 there, and nothing done twice', async (t) => {
    const sim = await createWecomSimulator({ corps: simulatorCorps() })
    t.teardown(() => sim.close())
    const store = { redis: redis.url, keyPrefix: `callback-${++prefixes}:` }
    const events: string[] = []
    const revocations: string[] = []
    let release = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    const options = (name: string, wait?: Promise<void>) => ({
      corps: callbackCorps(),
      hooks: { onRevoke: async () => { revocations.push(name) } },
      onEvent: async () => { events.push(name); await wait }
    })
    const a = await redisApp(t, sim, store, options('a', held))
    const b = await redisApp(t, sim, store, options('b'))
    const tokens = (await a.login('zhangsan')).json()
    const xml = deleteUserXml('zhangsan')

    const first = post(a.app, CORP_A, xml)
    t.ok(await eventually(5000, async () => events.length === 1), 'instance a is in onEvent')
    const resend = await post(b.app, CORP_A, xml)
    t.equal(resend.statusCode, 503, 'instance b does not acknowledge: WeCom resends')
    t.equal(resend.json().code, 'WECOM_CALLBACK_RETRY')
    release()
    t.equal((await first).body, 'success')
    t.equal((await post(b.app, CORP_A, xml)).body, 'success', 'a resend after a settled it')
    t.same(events, ['a'], 'onEvent once')
    t.same(revocations, ['a'], 'one off-boarding')
    t.equal((await b.me(tokens.access_token)).statusCode, 401)
  })
})

t.test('Redis stopped while a delivery is handled: not acknowledged; WeCom\'s resend after the claim lapsed ends the sessions', async (t) => {
  // A Redis of its own that keeps its data across the stop, as a production Redis does: the
  // delivery's claim outlives the outage, since its release failed while Redis was down.
  const redis = await startRedis(t, { persist: true })
  if (redis === undefined) return
  // WeCom's three resends come 5 s apart, the last 15 s or more after the first POST; 3.5 s apart,
  // the last still comes after the claim's 10 s lease, and the test waits 11 s rather than 15.
  const sim = await createWecomSimulator({ corps: simulatorCorps(), callbackRetryDelay: 3500 })
  t.teardown(() => sim.close())
  const store = { keyPrefix: 'callback-outage:' }
  // The client of the instance WeCom calls stops Redis once the first command after `armed`
  // (the delivery's claim) has succeeded, before the off-boarding's first command is sent.
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  // Redis is stopped on purpose below: its reconnection attempts are no news.
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  let armed = false
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command, stream) => (send(command, stream) as Promise<unknown>).then(async (reply) => {
    if (armed) {
      armed = false
      await redis.stop()
    }
    return reply
  })
  const revocations: string[] = []
  // api.timeout 5 s, the plugin's default: the claim's lease is then its 10 s floor, which the
  // resends above are timed to outlast (twice the harness's patient api.timeout would be 20 s).
  const options = { corps: callbackCorps(), api: { timeout: 5000 }, hooks: { onRevoke: async () => { revocations.push('revoked') } } }
  const a = await redisApp(t, sim, { ...store, redis: client }, options)
  const b = await redisApp(t, sim, { ...store, redis: redis.url }, options)
  const address = await a.app.listen({ port: 0, host: '127.0.0.1' })
  await sim.setCallback(CORP_A, { url: `${address}/wecom/callback`, token: TOKEN_A, encodingAESKey: KEY_A })
  const tokens = (await b.login('zhangsan')).json()

  armed = true
  const delivery = (await sim.removeMember(CORP_A, 'zhangsan'))!
  t.equal(delivery.acknowledged, false, 'not acknowledged: WeCom will resend')
  t.equal((await b.me(tokens.access_token)).statusCode, 200, 'the off-boarding reached no other instance')
  t.match(a.logs.records.find((r) => r.action === 'revokeUser'), { level: 50, msg: /not acknowledged, WeCom's resend will retry it/ })
  await redis.start()
  for (const instance of [a, b]) {
    t.ok(await eventually(5000, async () => (await instance.login('zhaoliu', CORP_B)).json().refresh_token !== undefined), 'Redis is back')
  }

  t.ok(await eventually(20_000, async () => delivery.acknowledged), 'a resend is acknowledged')
  const resent = Date.now()
  for (const [name, instance] of [['the instance WeCom called', a], ['the other instance', b]] as const) {
    // Pub/sub on loopback takes milliseconds; the bound is a second.
    t.ok(await eventually(1000, async () => (await instance.me(tokens.access_token)).statusCode === 401),
      `${name} refuses the access token within ${Date.now() - resent} ms of the resend`)
  }
  t.equal((await b.refresh(tokens.refresh_token)).statusCode, 401, 'the refresh answers 401')
  t.equal(revocations.length, 1, 'one off-boarding')
  t.ok(a.logs.records.some((r) => /another delivery of it is being handled/.test(String(r.msg))),
    'a resend within the lease found the claim held, and did nothing')
})
