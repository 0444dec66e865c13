import { generateKeyPairSync } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyWecomAuth, { type WecomAuthOptions } from '../../src/index.js'
import { createWecomSimulator, type WecomSimulator, type WecomSimulatorOptions } from '../../src/testing/simulator.js'

export const CORP_A = 'wwa1b2c3d4e5f60001'
export const SECRET_A = 'corp-a-app-secret-0123456789abcdefghijklmnop'
export const CORP_B = 'wwa1b2c3d4e5f60002'
export const SECRET_B = 'corp-b-app-secret-0123456789abcdefghijklmnop'
/** A corp the mini program is associated with but the server does not serve. */
export const CORP_FOREIGN = 'wwforeign00000000'
/** CORP_A's self-built app for the browser surfaces: its agentid, its own secret, the pages' host. */
export const WEB_A = { agentId: 1000005, secret: 'corp-a-web-secret-0123456789abcdefghijklmn' }
export const WEB_HOST = 'app.test'
/** zhangsan's private fields, which only auth/getuserdetail gives (a snsapi_privateinfo web login). */
export const PROFILE_A = { mobile: '13800138000', email: 'zhangsan@corp-a.test', avatar: 'https://avatar.test/zhangsan.png' }
export const JWT_SECRET = 'test-jwt-secret-that-is-long-enough-0123456789'

/**
 * The harness's api.timeout, in ms: patient, for the tests that are not about deadlines. A login
 * is three loopback calls; at 1 s, a test's first login answered 503 on a clean clone's CI, and
 * on a 2-core box at a load of 10 or more timers were seen to fire 750 ms late. A test about the
 * deadline sets its own, short one. (Twice it, 20 s, is also the claim lease of a callback
 * delivery: the test that waits a lease out sets its own api.timeout.)
 */
export const PATIENT_TIMEOUT = 10_000

export function simulatorCorps (): NonNullable<WecomSimulatorOptions['corps']> {
  return [
    {
      corpId: CORP_A,
      secret: SECRET_A,
      webApps: [{ ...WEB_A, trustedDomains: [WEB_HOST] }],
      outsiders: [{ openid: 'o-wechat-visitor' }],
      members: [
        { userid: 'zhangsan', name: '张三', department: [1, 2], position: 'engineer', mobile: PROFILE_A.mobile, email: PROFILE_A.email, avatar: PROFILE_A.avatar },
        { userid: 'lisi', name: '李四', visible: false },
        { userid: 'wangwu', name: '王五', status: 2 }
      ]
    },
    { corpId: CORP_B, secret: SECRET_B, members: [{ userid: 'zhaoliu', name: '赵六' }] },
    { corpId: CORP_FOREIGN, secret: 'foreign-secret-0123456789', members: [{ userid: 'outsider' }] }
  ]
}

/** Every log line an app wrote, as parsed JSON and raw text, for assertions on what was logged. */
export interface LogCapture { lines: string[], records: Array<Record<string, unknown>> }

export function captureLogs (): { stream: Writable, capture: LogCapture } {
  const capture: LogCapture = { lines: [], records: [] }
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        capture.lines.push(line)
        capture.records.push(JSON.parse(line) as Record<string, unknown>)
      }
      callback()
    }
  })
  return { stream, capture }
}

export interface Harness {
  app: FastifyInstance
  sim: WecomSimulator
  logs: LogCapture
  /** wx.qy.login for a member, then POST /wecom/login. */
  login (userid: string, corpId?: string, body?: Record<string, unknown>): Promise<LightMyRequestResponse>
}

interface TeardownTarget { teardown (fn: () => unknown): void }

/** Extra routes a test adds to the host app before it is ready. */
export type Extend = (app: FastifyInstance) => void

export async function buildApp (options: Partial<WecomAuthOptions> = {}, sim?: WecomSimulator, extend?: Extend): Promise<{ app: FastifyInstance, logs: LogCapture }> {
  const { stream, capture } = captureLogs()
  const app = Fastify({ logger: { level: 'trace', stream } })
  await app.register(fastifyWecomAuth, {
    corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_B, secret: SECRET_B }],
    jwt: { secret: JWT_SECRET },
    ...options,
    api: { timeout: PATIENT_TIMEOUT, ...options.api, baseUrl: sim?.url ?? 'http://127.0.0.1:9', authorizeUrl: sim?.authorizeUrl, ssoUrl: sim?.ssoUrl }
  })
  app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => request.wecomUser)
  extend?.(app)
  await app.ready()
  return { app, logs: capture }
}

/**
 * `count` calls of `call`, ten at a time; the answers in order. For tests of counts shared
 * through Redis: a hundred requests at once, beside the other tests of a loaded process, can hold
 * a Redis reply past the store's 1 s command timeout, and an instance then counts by itself, as
 * it is meant to when Redis is down.
 */
export async function inWaves<T> (count: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const answers: T[] = []
  for (let i = 0; i < count; i += 10) {
    answers.push(...await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => call(i + j))))
  }
  return answers
}

/**
 * A simulator of the test's own, closed at its end: a test that counts WeCom's calls or reads a
 * member's latest session_key needs one, for the tests of a folder run side by side (group.ts).
 */
export async function startSimulator (t: TeardownTarget, options: WecomSimulatorOptions = {}): Promise<WecomSimulator> {
  const sim = await createWecomSimulator({ corps: simulatorCorps(), ...options })
  t.teardown(() => sim.close())
  return sim
}

export async function setup (t: TeardownTarget, options: Partial<WecomAuthOptions> = {}, simOptions: WecomSimulatorOptions = {}, extend?: Extend): Promise<Harness> {
  const sim = await startSimulator(t, simOptions)
  const { app, logs } = await buildApp(options, sim, extend)
  t.teardown(() => app.close())
  return {
    app,
    sim,
    logs,
    login: (userid, corpId = CORP_A, body = {}) => app.inject({
      method: 'POST',
      url: '/wecom/login',
      payload: { code: sim.issueCode(corpId, userid), ...body }
    })
  }
}

/**
 * The healthy first login of a test with a short api.timeout, which caches the access token so
 * that the deadline tested next covers the login's own calls; its status. Tried up to five times,
 * 1.1 s apart (gettoken's back-off after a failure), for a short deadline can run out before a
 * healthy WeCom's answer is read when the process shares a busy machine, or its event loop
 * other tests' bursts: 2 s did, at a load of 13 (test/clock/ runs its tests side by side).
 */
export async function warmUp (h: Pick<Harness, 'login'>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const { statusCode } = await h.login('zhangsan')
    if (statusCode === 200 || attempt === 5) return statusCode
    await new Promise((resolve) => setTimeout(resolve, 1100))
  }
}

/** A P-256 pair as PEM (PKCS#8, SPKI): an ES256 `jwt` configuration. */
export function es256Pem (): { private: string, public: string } {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    private: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    public: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }
}
