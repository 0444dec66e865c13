import fc from 'fast-check'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyWecomAuth from '../../src/index.js'
import { createWecomSimulator, type WecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, CORP_B, JWT_SECRET, PATIENT_TIMEOUT, SECRET_A, SECRET_B, simulatorCorps } from './setup.js'

// Property-based checks of every way client data enters the plugin: the three route bodies, the
// Authorization header, and the decorators that take client data (decrypt, login). Each asserts
// that no answer is a 5xx, and that an input failing validation makes no WeCom call. Shared by
// test/fuzz.test.ts (2,000 inputs each, in `npm test`) and bench/fuzz.ts (10,000 each, `npm run fuzz`).

const APPID = 'wx1234567890abcdef'

export interface FuzzTarget {
  app: FastifyInstance
  sim: WecomSimulator
  /** A live access token, for the routes behind `authenticate`. */
  accessToken: string
  refreshToken: string
  /** What /api/decrypt-given hands to `decrypt`, set before each request. */
  given: { value: unknown }
  close (): Promise<void>
}

export async function fuzzTarget (): Promise<FuzzTarget> {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  const app = Fastify({ logger: false })
  const given = { value: undefined as unknown }
  await app.register(fastifyWecomAuth, {
    corps: [{ corpId: CORP_A, secret: SECRET_A }, { corpId: CORP_B, secret: SECRET_B }],
    jwt: { secret: JWT_SECRET },
    miniprogramAppId: APPID,
    api: { baseUrl: sim.url, timeout: PATIENT_TIMEOUT }
  })
  app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => request.wecomUser)
  // As the README shows it, and with values no JSON body can hold.
  app.post('/api/profile/mobile', { onRequest: app.wecom.authenticate }, async (request) => {
    const { mobile } = await app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string })
    return { mobile }
  })
  app.get('/api/decrypt-given', { onRequest: app.wecom.authenticate }, async (request) => app.wecom.decrypt(request, given.value))
  await app.ready()
  const login = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json()
  return {
    app,
    sim,
    accessToken,
    refreshToken,
    given,
    close: async () => {
      await app.close()
      await sim.close()
    }
  }
}

const wecomCalls = (sim: WecomSimulator) => sim.calls.gettoken + sim.calls.jscode2session + sim.calls['user/get']

/** Strings of every kind a client may send: empty, huge, unicode, base64, token-shaped. */
const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.base64String({ maxLength: 64 }),
  fc.stringMatching(/^[\w-]{16,40}\.\d{1,3}\.[\w-]{60,70}$/),
  fc.constantFrom('', ' ', 'null', CORP_A, CORP_B, 'a&userid=x', '\u0000', 'x'.repeat(513), 'x'.repeat(100_000))
)
const values = fc.oneof(strings, fc.jsonValue({ maxDepth: 3 }))
const bodyOf = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) => fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(fields, { requiredKeys: [] })
)

/** A request body as sent: JSON of a value (or none), or raw bytes under some content type. */
type Body = { json: unknown } | { raw: string, contentType: string }
const bodies = (shape: fc.Arbitrary<unknown>): fc.Arbitrary<Body> => fc.oneof(
  { weight: 4, arbitrary: shape.map((json) => ({ json })) },
  {
    weight: 1,
    arbitrary: fc.record({
      raw: fc.oneof(fc.string(), fc.json()),
      contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream')
    })
  }
)

/** The body the route's schema sees, or `invalid` where no parser makes one. */
const INVALID = Symbol('invalid')
function parsed (body: Body): unknown {
  if ('json' in body) return body.json
  if (!body.contentType.startsWith('application/json')) return INVALID
  try {
    return JSON.parse(body.raw)
  } catch {
    return INVALID
  }
}

function send (app: FastifyInstance, url: string, body: Body, authorization?: string): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization }
  if ('raw' in body) return app.inject({ method: 'POST', url, payload: body.raw, headers: { ...headers, 'content-type': body.contentType } })
  if (body.json === undefined) return app.inject({ method: 'POST', url, headers })
  return app.inject({ method: 'POST', url, payload: JSON.stringify(body.json), headers: { ...headers, 'content-type': 'application/json' } })
}

const isAscii = (value: unknown, max: number) => typeof value === 'string' && value.length <= max && /^[\x21-\x7e]+$/.test(value)
const field = (value: unknown, name: string): unknown =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined
const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value)

/** What /login's schema (and the login decorator) accept: only such input may reach WeCom. */
function validLogin (code: unknown, corpId: unknown): boolean {
  return isAscii(code, 512) && (corpId === undefined || isAscii(corpId, 64))
}

function check (condition: boolean, what: string): void {
  if (!condition) throw new Error(what)
}

/** One generated request: no 5xx; and no WeCom call unless `mayCallWecom`. */
async function expect (target: FuzzTarget, request: () => Promise<{ status: number }>, mayCallWecom: boolean): Promise<void> {
  const before = wecomCalls(target.sim)
  const { status } = await request()
  check(status < 500, `answered ${status}`)
  check(status >= 200, `answered ${status}`)
  if (!mayCallWecom) check(wecomCalls(target.sim) === before, 'an input failing validation called WeCom')
}

/** A decorator's outcome as a status: 200 when it resolves, its error's statusCode when it rejects. */
async function statusOf (call: () => Promise<unknown>): Promise<{ status: number }> {
  try {
    await call()
    return { status: 200 }
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode
    return { status: typeof status === 'number' ? status : 500 }
  }
}

export interface Property { name: string, property: (target: FuzzTarget) => fc.IAsyncProperty<[unknown]> }

const prop = <T>(arbitrary: fc.Arbitrary<T>, run: (input: T) => Promise<void>) =>
  fc.asyncProperty(arbitrary, run) as unknown as fc.IAsyncProperty<[unknown]>

export const properties: Property[] = [
  {
    name: 'POST /wecom/login body',
    property: (target) => prop(bodies(bodyOf({ code: values, corpId: fc.oneof(values, fc.constantFrom(CORP_A, CORP_B)) })), async (body) => {
      const json = parsed(body)
      await expect(target, () => send(target.app, '/wecom/login', body).then((res) => ({ status: res.statusCode })),
        json !== INVALID && isObject(json) && validLogin(field(json, 'code'), field(json, 'corpId')))
    })
  },
  {
    name: 'POST /wecom/refresh body',
    property: (target) => prop(bodies(bodyOf({ refresh_token: values })), async (body) => {
      // No generated token is a live one: nothing may reach WeCom (a recheck needs a live session).
      await expect(target, () => send(target.app, '/wecom/refresh', body).then((res) => ({ status: res.statusCode })), false)
    })
  },
  {
    name: 'POST /wecom/logout body',
    property: (target) => prop(fc.tuple(bodies(bodyOf({ refresh_token: values })), fc.boolean()), async ([body, bearer]) => {
      // A random bearer token would need a forged signature to end a session: the live one is
      // used only with bodies, which take precedence or fail validation.
      const authorization = bearer ? `Bearer ${target.accessToken}x` : undefined
      await expect(target, () => send(target.app, '/wecom/logout', body, authorization).then((res) => ({ status: res.statusCode })), false)
    })
  },
  {
    name: 'Authorization header',
    property: (target) => {
      const [head, payload, signature] = target.accessToken.split('.')
      const tokens = fc.oneof(
        strings,
        fc.constantFrom(target.accessToken, target.refreshToken, `${head}.${payload}.`, `${head}..${signature}`),
        fc.tuple(fc.constantFrom(head, payload, signature), fc.string({ maxLength: 8 })).map(([part, noise]) => `${part}${noise}`),
        fc.tuple(fc.nat({ max: target.accessToken.length - 1 }), fc.string({ minLength: 1, maxLength: 3 }))
          .map(([at, noise]) => target.accessToken.slice(0, at) + noise + target.accessToken.slice(at + 1))
      )
      const headers = fc.oneof(
        strings,
        fc.tuple(fc.constantFrom('Bearer ', 'bearer ', 'BEARER  ', 'Bearer', 'Basic ', 'Bearer\t'), tokens, fc.constantFrom('', ' ', '  x'))
          .map(([scheme, token, tail]) => `${scheme}${token}${tail}`)
      )
      return prop(headers, async (authorization) => {
        await expect(target, () => target.app.inject({ url: '/api/me', headers: { authorization } }).then((res) => {
          check(res.statusCode === 200 || res.statusCode === 401, `answered ${res.statusCode}`)
          return { status: res.statusCode }
        }), false)
      })
    }
  },
  {
    name: 'decrypt(request, body) as the README uses it',
    property: (target) => prop(bodies(bodyOf({ encryptedData: values, iv: values })), async (body) => {
      await expect(target, () => send(target.app, '/api/profile/mobile', body, `Bearer ${target.accessToken}`).then((res) => {
        if (res.statusCode === 400 && res.json().code?.startsWith('WECOM_')) check(res.json().code === 'WECOM_DECRYPT_FAILED', res.json().code)
        return { status: res.statusCode }
      }), false)
    })
  },
  {
    name: 'decrypt(request, any value)',
    property: (target) => {
      const anything = fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withBoxedValues: true, withSparseArray: true })
      return prop(fc.oneof(anything, fc.record({ encryptedData: fc.oneof(values, anything), iv: fc.oneof(values, anything) }, { requiredKeys: [] })), async (value) => {
        target.given.value = value
        await expect(target, () => target.app.inject({ url: '/api/decrypt-given', headers: { authorization: `Bearer ${target.accessToken}` } }).then((res) => {
          check(res.statusCode === 400 && res.json().code === 'WECOM_DECRYPT_FAILED', `answered ${res.statusCode} ${res.body.slice(0, 80)}`)
          return { status: res.statusCode }
        }), false)
      })
    }
  },
  {
    name: 'login(code, options)',
    property: (target) => {
      const anything = fc.anything({ withBigInt: true, withMap: true, withNullPrototype: true, withBoxedValues: true })
      const options = fc.oneof(anything, fc.record({ corpId: fc.oneof(values, anything, fc.constantFrom(CORP_A, CORP_B)) }, { requiredKeys: [] }))
      return prop(fc.tuple(fc.oneof(values, anything), options), async ([code, loginOptions]) => {
        const corpId = isObject(loginOptions) || typeof loginOptions === 'function' ? field(loginOptions, 'corpId') : undefined
        await expect(target, () => statusOf(() => target.app.wecom.login(code as string, loginOptions as { corpId?: string })), validLogin(code, corpId))
      })
    }
  }
]

/** Runs one property for `numRuns` inputs; rejects with fast-check's report (the shrunk input) on failure. */
export async function runProperty (target: FuzzTarget, { property }: Property, numRuns: number, seed?: number): Promise<void> {
  await fc.assert(property(target), { numRuns, seed })
}
