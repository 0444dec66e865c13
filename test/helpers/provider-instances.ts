import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { WecomAuthOptions } from '../../src/index.js'
import { createWecomSimulator } from '../../src/testing/simulator.js'
import { eventually, redisApp, type RedisApp } from './redis.js'
import { CORP_A, simulatorCorps } from './setup.js'
import { OTHER, PROVIDER, SUITE, suiteOptions } from './suites.js'

// A service provider's corp across two instances sharing Redis (issue 19), on one server or a
// Cluster: installed on one, logged in on both, uninstalled: refused on both within 1 s.

/** Every key under `prefix` on each node and what it holds, as text: each node read for its own keys. */
async function dump (urls: readonly string[], prefix: string): Promise<Array<[string, string]>> {
  const entries: Array<[string, string]> = []
  for (const url of urls) {
    const node = new Redis(url)
    try {
      for (const key of await node.keys(`${prefix}*`)) {
        const type = await node.type(key)
        const value = type === 'hash'
          ? await node.hgetall(key)
          : type === 'zset' ? await node.zrange(key, '0', '-1') : type === 'set' ? await node.smembers(key) : type === 'list' ? await node.lrange(key, 0, -1) : await node.get(key)
        entries.push([key, JSON.stringify(value)])
      }
    } finally {
      node.disconnect()
    }
  }
  return entries
}

/** As WeCom resends a push not acknowledged: a loaded run can hold a Redis reply past the store's 1 s command timeout (then 503). */
async function acknowledged (push: () => Promise<{ status: number } | undefined>): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    if ((await push())?.status === 200) return true
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return false
}

/**
 * Instances of a provider's app on `store`, one per entry of `apps` (their options beside
 * suiteOptions), the simulator connected to the first: a suite_ticket pushed and CORP_A installed
 * through it. `login` logs a member of CORP_A in on an instance through SUITE.
 */
export async function installedOnRedis (t: Test, store: WecomAuthOptions['store'], apps: ReadonlyArray<Partial<WecomAuthOptions>>) {
  const sim = await createWecomSimulator({ corps: simulatorCorps(), provider: { corpId: PROVIDER }, suites: [SUITE, OTHER] })
  t.teardown(() => sim.close())
  const instances: RedisApp[] = []
  for (const options of apps) instances.push(await redisApp(t, sim, store, { ...suiteOptions, corps: undefined, ...options }))
  await sim.connectSuites(`${await instances[0]!.app.listen({ port: 0, host: '127.0.0.1' })}/wecom/suite/callback`)
  t.ok(await acknowledged(async () => (await sim.pushSuiteTicket(SUITE.suiteId)).answer))
  t.ok(await acknowledged(() => sim.install(CORP_A, { suiteId: SUITE.suiteId })), 'pushed to the first instance')
  const login = (app: RedisApp, userid = 'zhangsan') => app.app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, userid), suiteId: SUITE.suiteId } })
  return { sim, instances, login }
}

/**
 * install → login on two instances → cancel_auth on one: the corp's sessions refused on the other
 * within 1 s, its logins and refreshes refused, and its permanent code never in clear in Redis
 * (`nodes`: the URLs to read every key from; `store.keyPrefix` must be given).
 */
export async function installAcrossInstances (t: Test, store: WecomAuthOptions['store'] & { keyPrefix: string }, nodes: readonly string[]): Promise<void> {
  const { sim, instances, login } = await installedOnRedis(t, store, [{}, {}])
  const [a, b] = instances as [RedisApp, RedisApp]
  const code = sim.permanentCode(CORP_A, { suiteId: SUITE.suiteId })!

  const onB = await login(b, 'zhangsan')
  t.equal(onB.statusCode, 200, 'instance b knows the install, and the suite_ticket a kept')
  const onA = await login(a, 'zhangsan')
  t.equal(onA.statusCode, 200)
  t.equal(sim.calls['service/get_corp_token'], 1, 'one corp token for both instances')
  t.equal(sim.calls['service/get_suite_token'], 1, 'one suite token for both instances')
  t.same((await b.app.wecom.corps()).map(({ corpId }) => corpId), [CORP_A])

  const entries = await dump(nodes, store.keyPrefix)
  t.ok(entries.some(([key]) => key.startsWith(`${store.keyPrefix}suite-corps:`)), 'the install is in Redis')
  t.notOk(entries.some(([, value]) => value.includes(code)), 'the permanent code is sealed in Redis')
  for (const ticket of sim.suiteTickets(SUITE.suiteId)) t.ok(entries.some(([, value]) => value.includes(ticket.ticket)), 'the suite_ticket is shared through Redis')

  t.ok(await acknowledged(() => sim.pushSuite(SUITE.suiteId, { InfoType: 'cancel_auth', AuthCorpId: CORP_A })), 'cancel_auth pushed to instance a')
  // The refusal reaches b through Redis's revocation feed; 1 s is the issue's bound.
  t.ok(await eventually(1000, async () => (await b.me(onB.json().access_token)).statusCode === 401), 'b refuses its session\'s token within 1 s')
  t.equal((await b.me(onA.json().access_token)).json().code, 'WECOM_TOKEN_REVOKED', 'and a\'s')
  t.equal((await b.refresh(onB.json().refresh_token)).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no refresh on b')
  t.equal((await login(b, 'zhangsan')).json().code, 'WECOM_CORP_NOT_ALLOWED', 'no login on b')
  t.same(await a.app.wecom.corps(), [])
  t.notOk((await dump(nodes, store.keyPrefix)).some(([key]) => key.startsWith(`${store.keyPrefix}token:${CORP_A}:`)), 'the corp\'s tokens erased')
}
