import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { childEnv } from '../helpers/children.js'

// What `npm publish` would ship: the built package, its sources beside their maps, the license and
// the docs; nothing of the tests, the bench or CI. Checked on the list `npm pack` makes.

const root = new URL('../..', import.meta.url).pathname

// The tests of the built package need `npm run build` first, which .ci/run does before `npm test`.
// Right after `npm ci` there is no dist/: said as a skip with the remedy, not as a dozen failures,
// except under CI=true, where a missing build is a broken pipeline.
const unbuilt = 'dist/ is not built: run npm run build, then npm test'
const built = existsSync(join(root, 'dist/esm/index.js'))
// A failing test, not a throw: this file shares its process with the rest of test/core/.
if (!built && process.env.CI === 'true') t.test('dist/ is built', async (t) => { t.fail(unbuilt) })
const needsBuild = { skip: built ? false : unbuilt }
// Not execFileSync: the tests beside these in this process would stand still meanwhile.
const run = async (file: string, args: string[]) => (await promisify(execFile)(file, args, { cwd: root, encoding: 'utf8', env: childEnv() })).stdout

t.test('the packed file list', needsBuild, async (t) => {
  const [pack] = JSON.parse(await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'])) as Array<{ files: Array<{ path: string }> }>
  const files = new Set(pack.files.map((file) => file.path))
  const built = ['esm', 'commonjs'].flatMap((dialect) => ['index.js', 'index.d.ts', 'testing/simulator.js', 'testing/simulator.d.ts'].map((file) => `dist/${dialect}/${file}`))
  for (const required of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/esm/testing/cli.js', ...built]) {
    t.ok(files.has(required), `ships ${required}`)
  }
  for (const file of files) {
    t.notOk(/^(test|bench|examples|\.ci|node_modules)\//.test(file), `${file} is the package's own`)
    if (!file.endsWith('.map')) continue
    const { sources } = JSON.parse(readFileSync(join(root, file), 'utf8')) as { sources: string[] }
    for (const source of sources) {
      t.ok(files.has(normalize(join(dirname(file), source))), `${file}: its source ${source} is shipped`)
    }
  }
})

t.test('package.json says where it lives and what it needs', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  t.match(pkg.repository?.url, /^git\+https:\/\//)
  t.match(pkg.homepage, /^https:\/\//)
  t.match(pkg.bugs?.url, /^https:\/\//)
  t.equal(pkg.license, 'MIT')
  t.equal(pkg.peerDependencies?.fastify, '^5.0.0', 'a Fastify 4 app gets a warning at install')
  t.match(pkg.engines?.node, />=20\.19/)
  // Not on the registry yet: an install from git (README, Install) gets dist/ only through prepare.
  // It also builds tap's runner for this project's plugin set, which `npm test` would otherwise
  // do on its first run after `npm ci`.
  t.equal(pkg.scripts?.prepare, `${pkg.scripts?.build} && tap build`, 'prepare builds dist/, then tap\'s runner')
})

// A user's `npm install` installs every dependency: one that only the tests import is a
// devDependency. Type-only imports count, for the shipped .d.ts files import those packages too,
// and so do the @types packages a dependency's own types need without depending on them
// (@types/redis-errors for ioredis's), which test/types/fresh.sh checks.
t.test('every runtime dependency is a package src/ imports', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  const imported = new Set<string>()
  const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'))
  for (const file of sources) {
    for (const [, specifier] of readFileSync(join(root, 'src', file), 'utf8').matchAll(/\b(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) {
      const parts = specifier!.split('/')
      imported.add(parts.slice(0, specifier!.startsWith('@') ? 2 : 1).join('/'))
    }
  }
  t.ok(imported.has('zod') && imported.has('@fastify/rate-limit'), 'the scan finds imports')
  t.same(Object.keys(pkg.dependencies).filter((name) => !imported.has(name) && !name.startsWith('@types/')), [], 'no dependency src/ does not import')
})

t.test('the simulator\'s command is a built file with a node shebang', needsBuild, async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const bin = pkg.bin?.['fastify-wecom-auth-simulator']
  t.match(bin, /^\.\/dist\//)
  t.match(readFileSync(join(root, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/)
})

t.test('require() and import both load it: the CommonJS build beside the ES module one', needsBuild, async (t) => {
  const probe = async (code: string, ...flags: string[]) => (await run(process.execPath, [...flags, '-e', code])).trim()
  // Two probes, not three: a process costs some 1 CPU-s to start under tap.
  t.match(await probe("const m = require('fastify-wecom-auth'); console.log(typeof m.default, typeof m.fastifyWecomAuth, typeof require('fastify-wecom-auth/testing').createWecomSimulator, require.resolve('fastify-wecom-auth'))"),
    /^function function function \S*dist\/commonjs\/index\.js$/)
  t.equal(await probe("const m = await import('fastify-wecom-auth'); console.log(typeof m.default, typeof (await import('fastify-wecom-auth/testing')).createWecomSimulator)", '--input-type=module'),
    'function function')
})
