import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

// The tests' child processes (login workers, the simulator's command, a booting app) run from
// the sources, bundled here for plain `node`. Through tsx each cost some 1.9 CPU-s before its
// first line, tsx's loader thread seeing every module load, a large share of `npm test` on the
// 2 cores CI has: a bundle starts in a fraction of that. Built once per entry and process.

const root = fileURLToPath(new URL('../../', import.meta.url))
const bundles = new Map<string, Promise<string>>()
let folder: string | undefined

/**
 * `entry` (a TypeScript file of this repository) and the files of it imports from here, as one
 * ES module file for `node` to run; packages stay imports from node_modules/, which the file
 * finds from where it is written (node_modules/.cache/). Its path.
 */
export function compiled (entry: URL): Promise<string> {
  const source = fileURLToPath(entry)
  let bundle = bundles.get(source)
  if (bundle === undefined) {
    bundle = bundleOf(source)
    bundles.set(source, bundle)
  }
  return bundle
}

async function bundleOf (source: string): Promise<string> {
  if (folder === undefined) {
    const cache = join(root, 'node_modules/.cache')
    mkdirSync(cache, { recursive: true })
    const made = mkdtempSync(join(cache, 'fastify-wecom-auth-tests-'))
    process.on('exit', () => rmSync(made, { recursive: true, force: true }))
    folder = made
  }
  const outfile = join(folder, `${basename(source, '.ts')}-${bundles.size}.mjs`)
  await build({ entryPoints: [source], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' })
  return outfile
}

/**
 * The environment a test's child process gets: this one's without tap's hooks (tap puts its
 * process-info loader in NODE_OPTIONS, which each node child would load at some 0.4 CPU-s for a
 * coverage report the children are not part of) and without V8 coverage.
 */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, NODE_OPTIONS: options = '', ...inherited } = process.env
  const kept = options.split(/\s+/).filter((flag) => flag !== '' && !flag.includes('@tapjs')).join(' ')
  return { ...inherited, ...(kept === '' ? {} : { NODE_OPTIONS: kept }), ...extra }
}

const running = new Set<ChildProcess>()
let listening = false

/**
 * Kills `child` (a redis-server, say) should this process exit before it stopped it, as a test
 * that crashes would: one exit listener for all, for a folder's process starts dozens.
 */
export function killAtExit (child: ChildProcess): void {
  if (!listening) process.once('exit', () => { for (const left of running) left.kill('SIGKILL') })
  listening = true
  running.add(child)
  child.once('exit', () => running.delete(child))
}
