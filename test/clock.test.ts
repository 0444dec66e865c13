// The tests that mostly wait on the real clock (deadlines, breaker cool-downs, back-off and
// refusal windows, session and grace expiry), file by file in test/clock/: one process, eight
// tests at a time (see helpers/group.ts). One after another they took 50 s of waiting for about
// 8 s of CPU. Every test has its own simulator and app; a burst of one (128 logins at once) holds
// the event loop the others share, so their bounds on time carry slack (LOAD_SLACK in bad-days.ts)
// and a test under a short deadline warms up with retries (warmUp in helpers/setup.ts).
import t from 'tap'
import { runFolder } from './helpers/group.js'

t.jobs = 8
await runFolder(new URL('./clock/', import.meta.url))
