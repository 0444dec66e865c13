import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import t from 'tap'

// Types are checked as a user gets them: built to dist/ (npm run build, as .ci/run does before
// npm test) and imported by package name, strict, from an ES module and from a CommonJS one.
t.test('the consumer files type-check against the built package, ESM and CommonJS', async (t) => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  let output = ''
  try {
    output = execFileSync(process.execPath, [tsc, '-p', 'test/types/tsconfig.json'], { encoding: 'utf8', stdio: 'pipe' })
  } catch (error) {
    output = String((error as { stdout?: string }).stdout)
  }
  t.equal(output, '', 'no type error in test/types/consumer.ts or consumer-cjs.cts')
})
