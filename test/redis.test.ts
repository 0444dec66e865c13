// The tests that need one redis-server, each file its own (started on a free port, stopped at
// the end): one process for all, see helpers/group.ts. The Redis files that wait on the clock,
// spawn processes or start a Cluster or Sentinels keep a process of their own: test/redis-*.test.ts.
import { runFolder } from './helpers/group.js'

await runFolder(new URL('./redis/', import.meta.url))
