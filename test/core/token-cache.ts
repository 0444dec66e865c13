import t from 'tap'
import { TokenCache, tokenKey } from '../../src/wecom/credentials.js'
import { FakeShared } from '../helpers/shared-tokens.js'

const corp = { corpId: 'ww1', secret: 'app-secret-one' }

function fakeWecom (expiresIn = 7200) {
  let issued = 0
  const calls: string[] = []
  return {
    calls,
    fetch: async (credentials: { corpId: string, secret: string }) => {
      calls.push(credentials.corpId)
      await new Promise((resolve) => setImmediate(resolve))
      return { accessToken: `token-${++issued}`, expiresIn }
    }
  }
}

t.test('the cache key is per (corpId, secret) and does not contain the secret', async (t) => {
  t.not(tokenKey(corp), tokenKey({ ...corp, secret: 'app-secret-two' }), 'two apps of one corp, two tokens')
  t.not(tokenKey(corp), tokenKey({ ...corp, corpId: 'ww2' }))
  t.notMatch(tokenKey(corp), /app-secret/)
})

t.test('single flight: concurrent callers on a cold cache share one fetch', async (t) => {
  const wecom = fakeWecom()
  const cache = new TokenCache({ fetch: wecom.fetch })
  const tokens = await Promise.all(Array.from({ length: 50 }, () => cache.get(corp)))
  t.same(new Set(tokens), new Set(['token-1']))
  t.equal(wecom.calls.length, 1)
})

t.test('refreshed ahead of expiry in the background, once; never used in its last tenth', async (t) => {
  const wecom = fakeWecom(1000)
  let now = 0
  const cache = new TokenCache({ fetch: wecom.fetch, now: () => now })
  t.equal(await cache.get(corp), 'token-1')
  now = 800_000
  t.equal(await cache.get(corp), 'token-1', 'within its last quarter: still served')
  t.equal(await cache.get(corp), 'token-1', 'while the background refresh runs')
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(wecom.calls.length, 2, 'one background refresh')
  t.equal(await cache.get(corp), 'token-2')
})

t.test('when WeCom hands back the same token early, it is not asked again until expiry', async (t) => {
  let calls = 0
  let now = 0
  const cache = new TokenCache({
    now: () => now,
    fetch: async () => { calls++; return { accessToken: 'same', expiresIn: 1000 - now / 1000 } }
  })
  await cache.get(corp)
  now = 800_000
  await cache.get(corp)
  await new Promise((resolve) => setImmediate(resolve))
  for (let i = 0; i < 5; i++) await cache.get(corp)
  t.equal(calls, 2)
  now = 999_000
  await cache.get(corp)
  t.equal(calls, 3, 'in the last tenth it is fetched again')
})

t.test('drop forgets the token only if it is still the one that failed', async (t) => {
  const wecom = fakeWecom()
  const cache = new TokenCache({ fetch: wecom.fetch })
  const first = await cache.get(corp)
  await cache.drop(corp, 'some-older-token')
  t.equal(await cache.get(corp), first, 'a stale failure does not drop the current token')
  await cache.drop(corp, first)
  t.equal(await cache.get(corp), 'token-2')
})

t.test('with a shared store: a token another process fetched is used, not refetched', async (t) => {
  const wecom = fakeWecom()
  const shared = new FakeShared()
  shared.values.set(tokenKey(corp), { value: 'from-another-process', expiresAt: Date.now() + 3_600_000, fetchedAt: Date.now() })
  const cache = new TokenCache({ fetch: wecom.fetch, shared })
  t.equal(await cache.get(corp), 'from-another-process')
  t.equal(wecom.calls.length, 0)
  t.equal(shared.locks, 0, 'no lock needed for a read')
})

t.test('with a shared store: a cold fetch happens under the lock and is written for the others', async (t) => {
  const wecom = fakeWecom()
  const shared = new FakeShared()
  const cache = new TokenCache({ fetch: wecom.fetch, shared })
  t.equal(await cache.get(corp), 'token-1')
  t.equal(shared.values.get(tokenKey(corp))?.value, 'token-1')
  t.equal(shared.locks, 1)

  await cache.drop(corp, 'token-1')
  t.notOk(shared.values.has(tokenKey(corp)), 'compare-and-delete removed the failed token')
  shared.values.set(tokenKey(corp), { value: 'fresh-from-elsewhere', expiresAt: Date.now() + 3_600_000, fetchedAt: Date.now() })
  await cache.drop(corp, 'token-1')
  t.equal(shared.values.get(tokenKey(corp))?.value, 'fresh-from-elsewhere', 'never another process\'s fresh token')
})

t.test('with the shared store down: tokens come from WeCom per process, the outage is told once', async (t) => {
  const wecom = fakeWecom(1)
  const shared = new FakeShared()
  const events: string[] = []
  let now = 0
  const cache = new TokenCache({
    fetch: wecom.fetch,
    shared,
    now: () => now,
    onSharedStoreDown: () => events.push('down'),
    onSharedStoreUp: () => events.push('up')
  })
  shared.down = true
  t.equal(await cache.get(corp), 'token-1')
  now += 5000
  t.equal(await cache.get(corp), 'token-2')
  shared.down = false
  now += 5000
  t.equal(await cache.get(corp), 'token-3')
  t.same(events, ['down', 'up'])
})

t.test('WeCom errors under the lock are not mistaken for a store outage', async (t) => {
  const shared = new FakeShared()
  const cache = new TokenCache({ fetch: async () => { throw new Error('40013') }, shared })
  await t.rejects(cache.get(corp), { message: '40013' })
})

t.test('with a shared store: instances refreshing ahead together ask WeCom once, even for the same token back', async (t) => {
  let calls = 0
  let now = 0
  const fetch = async () => {
    calls++
    await new Promise((resolve) => setImmediate(resolve))
    // WeCom hands back the live token, with what is left of its life.
    return { accessToken: 'same', expiresIn: 1000 - now / 1000 }
  }
  const shared = new FakeShared()
  const instances = Array.from({ length: 4 }, () => new TokenCache({ fetch, shared, now: () => now }))
  for (const cache of instances) t.equal(await cache.get(corp), 'same')
  t.equal(calls, 1, 'cold: one gettoken for all')
  now = 800_000
  for (const cache of instances) t.equal(await cache.get(corp), 'same')
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(calls, 2, 'ahead of expiry: one more gettoken for all four')
})
