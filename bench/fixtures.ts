import type { SimulatedCorp } from 'fastify-wecom-auth/testing'

/** api.timeout of the fault soak, in ms: every login must be answered within it + 200 ms. */
export const SOAK_TIMEOUT = 1000

/** One key for every variant: the plugin, @fastify/jwt on /plain and the baseline login sign and verify alike. */
export const JWT_SECRET = 'bench-jwt-secret-long-enough-for-hs256-0123456789'
/** The plugin's default access token life, given to the baseline too. */
export const ACCESS_TTL = 900

/** An ES256 key pair, made once per run by the scenario that needs it and handed to its server child. */
export interface BenchKeyPair { privateKey: string, publicKey: string }

/** The plugin's `jwt` option: the HS256 secret every variant shares, or an ES256 pair. */
export function pluginJwt (keyPair?: BenchKeyPair) {
  const keys = keyPair === undefined ? { secret: JWT_SECRET } : { private: keyPair.privateKey, public: keyPair.publicKey }
  return { ...keys, expiresIn: ACCESS_TTL }
}

export interface BenchCorp { corpId: string, secret: string }

export const CORP_A: BenchCorp = { corpId: 'wwbench0000000001', secret: 'bench-corp-a-secret-0123456789abcdef' }
export const CORP_B: BenchCorp = { corpId: 'wwbench0000000002', secret: 'bench-corp-b-secret-0123456789abcdef' }
export const CORPS = [CORP_A, CORP_B] as const
/** CORP_A's self-built app for the browser surfaces, and the origin of its pages. */
export const WEB_APP = { agentId: 1000005, secret: 'bench-corp-a-web-secret-0123456789ab' }
export const WEB_ORIGIN = 'http://bench.test'

/**
 * Members per corp, logging in in turn: a corp's staff, not one account logging in thousands of
 * times (which piles up live sessions on one member, a different workload).
 */
const MEMBERS = 1000
export const memberId = (n: number) => `u${n % MEMBERS}`

export function simulatedCorps (): SimulatedCorp[] {
  return CORPS.map(({ corpId, secret }) => ({
    corpId,
    secret,
    ...(corpId === CORP_A.corpId ? { webApps: [{ ...WEB_APP, trustedDomains: [new URL(WEB_ORIGIN).host] }] } : {}),
    members: Array.from({ length: MEMBERS }, (_, i) => ({ userid: memberId(i), name: memberId(i), department: [1], position: 'engineer' }))
  }))
}

/**
 * The service provider of scenario 8: its CorpID, one third-party suite, and the keys that seal the
 * permanent codes of the corps that install it. The simulator and the app are given the same.
 */
export const PROVIDER_CORP = 'wwbenchprovider001'
export const SUITE = {
  suiteId: 'wwbenchsuite000001',
  secret: 'bench-suite-secret-0123456789abcdef',
  token: 'bench-suite-token',
  encodingAESKey: 'benchSuiteEncodingAESKey0123456789abcdefghi',
  kind: 'third-party'
} as const
export const SEAL_KEYS = ['bench-seal-key-of-at-least-32-characters-0123']

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`)
  return value
}

/** Milliseconds the simulator adds to every WeCom call: a stand-in for the round trip to WeCom. */
export const LATENCY = envNumber('BENCH_LATENCY', 20)
export const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 5)))
