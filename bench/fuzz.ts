// npm run fuzz: the properties of test/fuzz.test.ts on 10,000 generated inputs each (FUZZ_RUNS
// to change it), five times what `npm test` runs, beside the benchmarks as a longer run. Exits 1
// when a property fails, printing fast-check's shrunk counterexample and its seed.
import { fuzzTarget, properties, runProperty } from '../test/helpers/fuzz.js'

const runs = Number(process.env.FUZZ_RUNS ?? 10_000)
const target = await fuzzTarget()
let failed = false
try {
  for (const property of properties) {
    const started = performance.now()
    try {
      await runProperty(target, property, runs)
      console.log(`ok   ${property.name}: ${runs} inputs in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    } catch (error) {
      failed = true
      console.log(`FAIL ${property.name}\n${(error as Error).message}`)
    }
  }
} finally {
  await target.close()
}
process.exitCode = failed ? 1 : 0
