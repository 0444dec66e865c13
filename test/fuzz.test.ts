import t from 'tap'
import { fuzzTarget, properties, runProperty } from './helpers/fuzz.js'

// 2,000 generated inputs per entry point, in every `npm test`, as issue 8 asks (a new seed each
// run, so CI covers more over time); `npm run fuzz` runs 10,000 each. They cost about 20 s of CPU,
// a large share of the suite on 2 cores (CONTRIBUTING.md). A failure prints fast-check's shrunk
// counterexample and the seed to replay it.
const RUNS = 2000

const target = await fuzzTarget()
t.teardown(() => target.close())

for (const property of properties) {
  t.test(`${property.name}: no 5xx, no WeCom call for an input failing validation (${RUNS} inputs)`, async (t) => {
    await runProperty(target, property, RUNS)
    t.pass()
  })
}
