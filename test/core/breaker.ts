import t from 'tap'
import { Breaker, type BreakerState } from '../../src/wecom/breaker.js'
import { Budget } from '../../src/wecom/budget.js'
import { Refusals } from '../../src/wecom/refusals.js'

function clock () {
  let now = 1_000_000
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

const options = { failures: 3, ratio: 0.5, window: 10_000 }

t.test('breaker: every transition', async (t) => {
  const time = clock()
  const changes: BreakerState[] = []
  const breaker = new Breaker({ ...options, coolDown: 5000 }, (state) => changes.push(state), time.now)
  t.equal(breaker.admit(), 0, 'closed: calls go')
  breaker.failure()
  breaker.failure()
  t.equal(breaker.state, 'closed', 'fewer failures than `failures`')
  breaker.failure()
  t.equal(breaker.state, 'open', 'opens at the third failure, all the calls having failed')
  t.equal(breaker.admit(), 5000, 'open: refused, with the cool-down left')
  time.advance(4000)
  t.equal(breaker.admit(), 1000)
  time.advance(1000)
  t.equal(breaker.admit(), 0, 'after the cool-down: one probe goes')
  t.equal(breaker.state, 'half-open')
  t.ok(breaker.admit() > 0, 'while the probe is out, the others are refused')
  breaker.failure()
  t.equal(breaker.state, 'open', 'a failed probe opens it again')
  t.equal(breaker.admit(), 5000, 'for a whole cool-down')
  time.advance(5000)
  t.equal(breaker.admit(), 0)
  breaker.success()
  t.equal(breaker.state, 'closed', 'a good probe closes it')
  t.equal(breaker.admit(), 0)
  breaker.failure()
  breaker.failure()
  t.equal(breaker.state, 'closed', 'closing starts the count over')
  t.same(changes, ['open', 'half-open', 'open', 'half-open', 'closed'], 'each change told once')
})

t.test('breaker: a degraded WeCom is not a dead one: a ratio over the window, not failures in a row', async (t) => {
  const time = clock()
  const breaker = new Breaker({ ...options, coolDown: 1000 }, () => {}, time.now)
  // One call in twenty fails, the failures in runs of five (hung calls ending at their deadlines).
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 95; i++) breaker.success()
    for (let i = 0; i < 5; i++) breaker.failure()
    time.advance(100)
  }
  t.equal(breaker.state, 'closed', '5% of calls failing, in runs: stays closed')
  time.advance(11_000)
  breaker.success()
  breaker.failure()
  breaker.failure()
  t.equal(breaker.state, 'closed', 'two failures: fewer than `failures`')
  breaker.failure()
  t.equal(breaker.state, 'open', 'three calls in four failing, once the older successes aged out of the window')
})

t.test('breaker: calls older than the window do not count', async (t) => {
  const time = clock()
  const breaker = new Breaker({ ...options, coolDown: 1000 }, () => {}, time.now)
  breaker.failure()
  breaker.failure()
  time.advance(11_000)
  breaker.failure()
  breaker.failure()
  t.equal(breaker.state, 'closed', 'two failures now, two out of the window')
  breaker.failure()
  t.equal(breaker.state, 'open')
})

t.test('refusals: a window per key; back-off doubles from 1 s to a minute and starts over after a success', async (t) => {
  const time = clock()
  const refusals = new Refusals<string>(time.now)
  t.equal(refusals.remember('a', 'refused', 'why', 1000), true, 'a new window')
  t.equal(refusals.remember('a', 'refused', 'why', 1000), false, 'the same window: not told again')
  t.equal(refusals.check('a')?.error, 'why')
  t.equal(refusals.check('b'), undefined)
  time.advance(1000)
  t.equal(refusals.check('a'), undefined, 'the window ended')
  const delays = Array.from({ length: 8 }, () => refusals.backOff('g', 'down'))
  t.same(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000])
  refusals.succeeded('g')
  t.equal(refusals.backOff('g', 'down'), 1000)
})

t.test('budget: a bucket per key, refilled continuously', async (t) => {
  const time = clock()
  const budget = new Budget(60, undefined, time.now)
  for (let i = 0; i < 60; i++) t.equal(await budget.take('corp a'), 0)
  t.equal(budget.wait('corp a'), 1000, 'spent: one call a second comes back')
  t.equal(await budget.take('corp a'), 1000)
  t.equal(await budget.take('corp b'), 0, 'another corp has its own')
  time.advance(1000)
  t.equal(budget.wait('corp a'), 0)
  t.equal(await budget.take('corp a'), 0)
})

/** A fixed-window counter as the Redis store keeps it, for several budgets to share. */
function sharedCounter (now: () => number) {
  const counts = new Map<string, { current: number, until: number }>()
  let calls = 0
  return {
    get calls () { return calls },
    async incr (key: string, window: number, by = 1) {
      calls++
      let entry = counts.get(key)
      if (entry === undefined || entry.until <= now()) {
        entry = { current: 0, until: now() + window }
        counts.set(key, entry)
      }
      entry.current += by
      return { current: entry.current, ttl: entry.until - now() }
    }
  }
}

t.test('budget: instances sharing a counter spend one budget, in leases', async (t) => {
  const time = clock()
  const counter = sharedCounter(time.now)
  const instances = Array.from({ length: 4 }, () => new Budget(1000, counter, time.now))
  let taken = 0
  for (let i = 0; i < 3000; i++) {
    if (await instances[i % 4].take('corp a') === 0) taken++
  }
  t.equal(taken, 1000, 'four instances together take the minute\'s 1,000 calls, not 4,000')
  t.ok(counter.calls <= 1000 / 10 + 8, `the counter asked once per lease (${counter.calls} times), not per call`)
  const wait = await instances[0].take('corp a')
  t.ok(wait > 0 && wait <= 60_000, 'spent: the wait is what is left of the window')
  time.advance(60_000)
  t.equal(await instances[1].take('corp a'), 0, 'the next window gives again')
})

t.test('budget: the counter down, each process counts alone; concurrent takers share one lease request', async (t) => {
  const time = clock()
  let calls = 0
  const failing = { incr: async () => { calls++; throw new Error('down') } }
  const budget = new Budget(2, failing, time.now)
  t.same(await Promise.all([budget.take('k'), budget.take('k'), budget.take('k')]), [0, 0, 30_000], 'the local bucket: 2 a minute')
  t.equal(calls, 1, 'one request to the counter for the three')
})
