import { readdirSync } from 'node:fs'

/**
 * Runs every `.ts` file of a folder, in name order, in this one process: each registers its
 * tests on tap's root test as if tap had started it alone (`npx tap test/core/guard.ts`
 * still runs one), and they run `t.jobs` at a time, a file's tests beside each other's and beside
 * other files'. tap gives every file a process of its own, and loading Node, tsx, tap and the
 * plugin costs each about 2 CPU-s before a test runs: for files that need nothing of a process of
 * their own (no global state, no exit), that was most of their cost, on the 2 cores CI has. See
 * CONTRIBUTING.md, "How long `npm test` takes".
 */
export async function runFolder (folder: URL): Promise<void> {
  const files = readdirSync(folder).filter((name) => name.endsWith('.ts')).sort()
  if (files.length === 0) throw new Error(`no test file in ${folder.pathname}`)
  for (const name of files) await import(new URL(name, folder).href)
}
