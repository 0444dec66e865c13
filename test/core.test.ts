// The plugin's, the simulator's and the example's behaviour, file by file in test/core/: one
// process for all (see helpers/group.ts). The files that keep a process of their own are those
// that wait long on the real clock, spawn processes, start Chromium or a Redis Cluster or
// Sentinels, or set process-wide state (telemetry's global providers).
import { runFolder } from './helpers/group.js'

await runFolder(new URL('./core/', import.meta.url))
