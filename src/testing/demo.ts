import type { SimulatedCorp } from './directory.js'
import type { SimulatedSuite } from './suite-pushes.js'

// The demo service provider, its third-party suite and its client corp: one set for the
// command-line simulator (cli.ts) and the example server (examples/app.ts), so that either one's
// playground finds the same provider in the other. Made-up values, for the simulator only.

export const DEMO_PROVIDER = { corpId: 'wwdemoprovider01' }

export const DEMO_SUITE = {
  suiteId: 'wwdemosuite00001',
  secret: 'demo-suite-secret-not-a-real-one',
  token: 'demoSuiteToken',
  encodingAESKey: 'ZGVtby1zdWl0ZS1hZXMta2V5LW5vdC1hLXJlYWwhISE',
  kind: 'third-party'
} as const satisfies SimulatedSuite

/** A client corp of the provider: nothing of it is the plugin's until it installs the suite. */
export const DEMO_CLIENT: SimulatedCorp = { corpId: 'wwdemoclient0001', secret: 'demo-client-secret-not-a-real-one', members: [{ userid: 'sunqi', name: '孙七' }] }
