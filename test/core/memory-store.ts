import t from 'tap'
import { MemorySessionStore } from '../../src/stores/memory.js'
import type { SessionRecord } from '../../src/stores/store.js'
import { CORP_A } from '../helpers/setup.js'

const session = (sid: string, userid: string): SessionRecord => ({
  sid,
  corpid: CORP_A,
  userid,
  member: { corpid: CORP_A, userid },
  generation: 0,
  refreshHash: `hash-of-${sid}`,
  checkedAt: Date.now(),
  startedAt: Date.now(),
  expiresAt: Date.now() + 60_000
})

async function live (store: MemorySessionStore, sids: readonly string[]): Promise<string[]> {
  const kept: string[] = []
  for (const sid of sids) if (await store.get(sid) !== null) kept.push(sid)
  return kept
}

t.test('past maxSessions the least recently saved or rotated sessions go, and never more are kept', async (t) => {
  const store = new MemorySessionStore({ maxSessions: 100 })
  const sids = Array.from({ length: 1000 }, (_, i) => `s${i}`)
  for (const [i, sid] of sids.entries()) {
    // Every fifth member has two sessions: the index of a member's sessions changes shape then.
    await store.save(session(sid, `u${i - (i % 5 === 1 ? 1 : 0)}`))
    if (i === 950) t.ok(await store.rotate({ ...session('s860', 'u860'), generation: 1 }, 'hash-of-s860'), 'a rotation moves s860 back')
  }
  const kept = await live(store, sids)
  t.equal(kept.length, 100, 'exactly maxSessions are kept')
  t.same(kept, ['s860', ...sids.slice(901)], 'the newest, and the one rotated late instead of the oldest')

  for (let i = 0; i < 300; i++) await store.saveSessionKey(CORP_A, `u${i}`, `sealed-${i}`, 60_000, Date.now())
  let keys = 0
  for (let i = 0; i < 300; i++) if (await store.sessionKeyOf(CORP_A, `u${i}`) !== null) keys++
  t.equal(keys, 100, 'session keys are bounded alike')
  t.equal(await store.sessionKeyOf(CORP_A, 'u299'), 'sealed-299')
  t.equal(await store.sessionKeyOf(CORP_A, 'u199'), null)
})

t.test('revokeMember ends every session of a member, whether it had one or many left', async (t) => {
  const store = new MemorySessionStore({ maxSessions: 3 })
  await store.save(session('a1', 'alice'))
  await store.save(session('a2', 'alice'))
  await store.save(session('a3', 'alice'))
  await store.save(session('b1', 'bob'))
  t.same(await live(store, ['a1', 'a2', 'a3', 'b1']), ['a2', 'a3', 'b1'], 'a1 pushed out by the bound')
  await store.revoke(['a3'], Date.now() + 1000)
  await store.revokeMember({ corpid: CORP_A, userid: 'alice', notBefore: Date.now(), until: Date.now() + 1000 })
  t.same(await live(store, ['a1', 'a2', 'a3', 'b1']), ['b1'], 'the last of alice\'s sessions is gone')

  await store.save(session('a4', 'alice'))
  await store.revokeMember({ corpid: CORP_A, userid: 'alice', notBefore: Date.now(), until: Date.now() + 1000 })
  await store.revokeMember({ corpid: CORP_A, userid: 'bob', notBefore: Date.now(), until: Date.now() + 1000 })
  t.same(await live(store, ['a4', 'b1']), [], 'a member with one session, each')
})

t.test('delivery claims: one live claim at a time, released only by its own id or its lease; done remembered for its ttl', async (t) => {
  let clock = 1_000_000
  const store = new MemorySessionStore({ maxSessions: 10, now: () => clock })
  const claimed = async (): Promise<string> => {
    const claim = await store.claimDelivery('event', 10_000)
    if (claim.state !== 'new') throw new Error(`claimed ${claim.state}`)
    return claim.id
  }
  const first = await claimed()
  t.same(await store.claimDelivery('event', 10_000), { state: 'busy' })
  t.equal((await store.claimDelivery('another event', 10_000)).state, 'new', 'each delivery has its own claim')
  await store.settleDelivery('event', 'not-that-claim', false, 60_000)
  t.same(await store.claimDelivery('event', 10_000), { state: 'busy' }, 'another id releases nothing')
  await store.settleDelivery('event', first, false, 60_000)
  const second = await claimed()
  t.not(second, first, 'released: the next delivery claims it anew')

  clock += 10_000
  const third = await claimed()
  await store.settleDelivery('event', second, false, 60_000)
  t.same(await store.claimDelivery('event', 10_000), { state: 'busy' }, 'a lapsed claim\'s release leaves the new claim alone')
  await store.settleDelivery('event', third, true, 60_000)
  clock += 59_999
  t.same(await store.claimDelivery('event', 10_000), { state: 'done' })
  clock += 1
  t.equal((await store.claimDelivery('event', 10_000)).state, 'new', 'forgotten after its ttl')
})
