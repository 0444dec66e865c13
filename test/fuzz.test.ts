import t from 'tap'
import { fuzzTarget, properties, runProperty } from './helpers/fuzz.js'

// 500 generated inputs per entry point, in every `npm test` (a new seed each run, so CI covers
// more over time); `npm run fuzz` runs 10,000 each. 2,000 took 20 s of CPU, a third of the whole
// suite's budget on 2 cores (CONTRIBUTING.md). A failure prints fast-check's shrunk
// counterexample and the seed to replay it.
const RUNS = 500

const target = await fuzzTarget()
t.teardown(() => target.close())

for (const property of properties) {
  t.test(`${property.name}: no 5xx, no WeCom call for an input failing validation (${RUNS} inputs)`, async (t) => {
    await runProperty(target, property, RUNS)
    t.pass()
  })
}
