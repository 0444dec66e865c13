import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import t from 'tap'

// Types are checked as a user gets them: built to dist/ and imported by package name, strict.
t.test('a consumer file type-checks against the built package in strict mode', async (t) => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const run = (project: string) => execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', stdio: 'pipe' })
  t.doesNotThrow(() => run('tsconfig.build.json'), 'the package builds')
  let output = ''
  try {
    output = run('test/types/tsconfig.json')
  } catch (error) {
    output = String((error as { stdout?: string }).stdout)
  }
  t.equal(output, '', 'no type error in test/types/consumer.ts')
})
