// The tests that need a redis-server (each file starts its own on a free port, a Cluster or
// Sentinels, and stops them at the end), file by file in test/redis/: one process for all, four
// tests at a time, for most of them wait on Redis, on boot's few seconds or on worker processes
// (see helpers/group.ts).
import t from 'tap'
import { runFolder } from './helpers/group.js'

t.jobs = 4
await runFolder(new URL('./redis/', import.meta.url))
