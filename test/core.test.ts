// The plugin's, the simulator's, the example's, the command-line simulator's and the package's
// behaviour, file by file in test/core/: one process for all, two tests at a time (see
// helpers/group.ts). More at once starved the clock tests beside them on a loaded machine.
import t from 'tap'
import { runFolder } from './helpers/group.js'

t.jobs = 2
await runFolder(new URL('./core/', import.meta.url))
