import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
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
    // A failed build is tried again by the next caller, not remembered.
    bundle.catch(() => bundles.delete(source))
    bundles.set(source, bundle)
  }
  return bundle
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function bundleOf (source: string): Promise<string> {
  if (folder === undefined) {
    const cache = join(root, 'node_modules/.cache')
    mkdirSync(cache, { recursive: true })
    // A process tap killed for its timeout runs no exit listener: its folder goes at the next start.
    for (const name of readdirSync(cache)) {
      const owner = /^fastify-wecom-auth-tests-(\d+)-/.exec(name)?.[1]
      if (owner !== undefined && !alive(Number(owner))) rmSync(join(cache, name), { recursive: true, force: true })
    }
    const made = mkdtempSync(join(cache, `fastify-wecom-auth-tests-${process.pid}-`))
    process.on('exit', () => rmSync(made, { recursive: true, force: true }))
    folder = made
  }
  const outfile = join(folder, `${basename(source, '.ts')}-${bundles.size}.mjs`)
  await build({ entryPoints: [source], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' })
  return outfile
}

/**
 * The environment a test's child process gets: this one's without V8 coverage, which a child
 * loading the sources another way would write against other line maps and garble the report.
 * (tap's process-info loader stays: tap puts it back into every child's NODE_OPTIONS.)
 */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...inherited } = process.env
  return { ...inherited, ...extra }
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
