import t from 'tap'
import { Breaker, type BreakerState } from '../../src/wecom/breaker.js'
import { Budget } from '../../src/wecom/budget.js'
import { Refusals } from '../../src/wecom/refusals.js'

function clock () {
  let now = 1_000_000
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

t.test('breaker: every transition', async (t) => {
  const time = clock()
  const changes: BreakerState[] = []
  const breaker = new Breaker({ failures: 3, coolDown: 5000 }, (state) => changes.push(state), time.now)
  const sent = time.now
  t.equal(breaker.admit(), 0, 'closed: calls go')
  breaker.failure(sent())
  breaker.failure(sent())
  breaker.success()
  breaker.failure(sent())
  breaker.failure(sent())
  t.equal(breaker.state, 'closed', 'a success in between starts the count over')
  breaker.failure(sent())
  t.equal(breaker.state, 'open', 'opens at the third failure in a row')
  t.equal(breaker.admit(), 5000, 'open: refused, with the cool-down left')
  time.advance(4000)
  t.equal(breaker.admit(), 1000)
  time.advance(1000)
  t.equal(breaker.admit(), 0, 'after the cool-down: one probe goes')
  t.equal(breaker.state, 'half-open')
  t.ok(breaker.admit() > 0, 'while the probe is out, the others are refused')
  breaker.failure(sent())
  t.equal(breaker.state, 'open', 'a failed probe opens it again')
  t.equal(breaker.admit(), 5000, 'for a whole cool-down')
  time.advance(5000)
  t.equal(breaker.admit(), 0)
  breaker.success()
  t.equal(breaker.state, 'closed', 'a good probe closes it')
  t.equal(breaker.admit(), 0)
  t.same(changes, ['open', 'half-open', 'open', 'half-open', 'closed'], 'each change told once')
})

t.test('breaker: a failure of a call sent before the last success does not count (a hang among answers)', async (t) => {
  const time = clock()
  const breaker = new Breaker({ failures: 2, coolDown: 1000 }, () => {}, time.now)
  const hungSince = time.now()
  time.advance(10)
  breaker.success()
  time.advance(990)
  breaker.failure(hungSince)
  breaker.failure(hungSince)
  breaker.failure(hungSince)
  t.equal(breaker.state, 'closed', 'WeCom answered while these were out')
  breaker.failure(time.now())
  breaker.failure(time.now())
  t.equal(breaker.state, 'open', 'calls sent after the last success, all failed')
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

t.test('budget: a bucket per key, refilled continuously, told once per change', async (t) => {
  const time = clock()
  const budget = new Budget(60, time.now)
  const told: boolean[] = []
  const take = (key: string) => {
    const wait = budget.wait(key, (spent) => told.push(spent))
    if (wait === 0) budget.take(key)
    return wait
  }
  for (let i = 0; i < 60; i++) t.equal(take('corp a'), 0)
  t.equal(take('corp a'), 1000, 'spent: one call a second comes back')
  t.equal(take('corp a'), 1000)
  t.equal(take('corp b'), 0, 'another corp has its own')
  time.advance(1000)
  t.equal(take('corp a'), 0)
  t.same(told, [true, false])
})
