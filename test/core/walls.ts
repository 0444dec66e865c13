import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// The house's walls (CONTRIBUTING.md, docs/design.md), checked on every import of src/: they hold
// only as long as a test says so.
const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

function files (folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(folder, entry.name)) : entry.name.endsWith('.ts') ? [join(folder, entry.name)] : [])
}

const graph = new Map<string, string[]>()
const packages = new Map<string, string[]>()
for (const file of files(src)) {
  const name = relative(src, file)
  const specifiers = [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1])
  graph.set(name, specifiers.filter((s) => s.startsWith('.')).map((s) => relative(src, resolve(dirname(file), s.replace(/\.js$/, '.ts')))))
  packages.set(name, specifiers.filter((s) => !s.startsWith('.')))
}

t.test('no import cycles in src/', async (t) => {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'open') {
      cycles.push([...path.slice(path.indexOf(name)), name].join(' → '))
      return
    }
    state.set(name, 'open')
    for (const next of graph.get(name) ?? []) visit(next, [...path, name])
    state.set(name, 'done')
  }
  for (const name of graph.keys()) visit(name, [])
  t.same(cycles, [])
})

t.test('wecom/, surfaces/ and events/ decide: they import nothing of fastify', async (t) => {
  const offenders = [...packages].filter(([name, used]) => /^(wecom|surfaces|events)\//.test(name) && used.some((p) => p === 'fastify' || p.startsWith('@fastify/')))
  t.same(offenders.map(([name]) => name), [])
})

t.test('only stores/ talks to Redis', async (t) => {
  const offenders = [...packages].filter(([name, used]) => !name.startsWith('stores/') && used.includes('ioredis') && !name.startsWith('testing/'))
  // options.ts names ioredis's client types for the `store.redis` option; it opens nothing.
  t.same(offenders.map(([name]) => name).filter((name) => name !== 'options.ts'), [])
})

t.test('nothing outside testing/ imports the simulator', async (t) => {
  const offenders = [...graph].filter(([name, imports]) => !name.startsWith('testing/') && imports.some((i) => i.startsWith('testing/')))
  t.same(offenders.map(([name]) => name), [])
})
