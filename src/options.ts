import { z } from 'zod'
import type { Dispatcher } from 'undici'
import type { FastifyRequest } from 'fastify'
import type { RateLimitPluginOptions } from '@fastify/rate-limit'
import { parse as parseDuration } from '@lukeed/ms'
import type { Cluster, Redis } from 'ioredis'
import type { WecomEvent } from './events/callback.js'
import { callbackOptions } from './events/callback-options.js'
import { describeIssue, required, strict } from './option-issues.js'
import { checkSuiteOptions, providerOptions, sealKeysOptions, suitesOptions, type AuthorizedCorp } from './suites/options.js'
import { algorithmOf, type JwtAlgorithm } from './jwt-algorithm.js'
import { authorizeUrl, ssoUrl, webApp, webOptions } from './web/options.js'

/** A member as the plugin exposes it: only the fields WeCom gave, never the session_key. */
export interface WecomMember {
  userid: string
  corpid: string
  name?: string
  department?: number[]
  position?: string
  /** A suite's member: the provider's own id for them, the same in every corp (doc path/92423). */
  open_userid?: string
}

export type AuthorizeFn = (user: WecomMember, request?: FastifyRequest) => boolean | Promise<boolean>

/**
 * An audit hook: awaited; what it throws is logged and ignored, unless it is one of the plugin's
 * own errors (src/errors.ts), which then fails the operation. `request` is there when the
 * operation came through a request.
 */
export type SessionHook = (member: WecomMember, sid: string, request?: FastifyRequest) => void | Promise<void>
/**
 * Told of every ended session or off-boarded member: `sid` for one session (`member` when it
 * was known), `member` alone for an off-boarding (revokeUser, or WeCom's event).
 */
export type RevokeHook = (member: WecomMember | undefined, sid: string | undefined, request?: FastifyRequest) => void | Promise<void>
/**
 * Told when a corp installed one of `suites` (create_auth) and when it uninstalled it (cancel_auth,
 * after its sessions ended): for the provider's own tables. Awaited; a hook that throws leaves the
 * push unacknowledged, and WeCom resends it.
 */
export type CorpHook = (corp: AuthorizedCorp) => void | Promise<void>
export interface WecomHooks {
  onLogin?: SessionHook
  onRefresh?: SessionHook
  onLogout?: SessionHook
  onRevoke?: RevokeHook
  onCorpAuthorized?: CorpHook
  onCorpCancelled?: CorpHook
}
/** The host's own claims for an access token; names the plugin sets are refused (WECOM_CLAIMS_INVALID). */
export type ExtendClaimsFn = (member: WecomMember, request?: FastifyRequest) => Record<string, unknown> | Promise<Record<string, unknown>>
/** Every WeCom event a callback delivered, after the plugin's own handling: the parsed fields. */
export type EventHook = (event: WecomEvent, request: FastifyRequest) => void | Promise<void>

const text = (what = 'a non-empty string') =>
  z.string(required(what)).min(1, { error: 'must not be empty' })
const seconds = () =>
  z.number(required('a number of seconds')).int('must be a whole number').positive('must be positive')
// setTimeout's limit: past it Node fires at once (a timeout of 25 days would time out every call).
const MAX_TIMER = 2 ** 31 - 1
const anyMilliseconds = () =>
  z.number(required('a number of milliseconds')).int('must be a whole number').positive('must be positive')
    .max(MAX_TIMER, { error: `must be at most ${MAX_TIMER} ms` })
const milliseconds = (fallback: number) => anyMilliseconds().default(fallback)
/** The `aud` of access tokens when `jwt.audience` is not set. */
const DEFAULT_AUDIENCE = 'fastify-wecom-auth'
/** Seconds: an access token's life, and a refresh token's (30 days), unless one must fit the other. */
const DEFAULT_EXPIRES_IN = 900
/** Milliseconds the breaker's failure ratio is taken over, unless api.timeout asks for more. */
const DEFAULT_BREAKER_WINDOW = 10_000
const DEFAULT_REFRESH_TTL = 30 * 24 * 3600
/**
 * Seconds a rotated refresh token still gets its rotation's answer (docs/design.md says why 30):
 * six of the Retry-After a 503 asks for, and longer than a mini program's usual request timeout.
 */
const DEFAULT_REUSE_GRACE = 30
const redisUrl = z.url({ error: 'must be a redis:// URL', protocol: /^rediss?$/ })
const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { error: 'must be a function' })
const keyMaterial = z.union([z.string(), z.instanceof(Buffer)], { error: 'must be a PEM string or Buffer' })
const hmacSecret = z.string(required('a string')).min(32, { error: 'must be at least 32 characters (HS256)' })
/** A key id: in every token's header and in the JWKS, so short and printable. */
const kid = z.string(required('a string')).regex(/^[\x21-\x7e]{1,64}$/, { error: 'must be 1 to 64 printable ASCII characters' })
const signingKey = z.union([
  z.strictObject({ kid, secret: hmacSecret }, strict()),
  z.strictObject({ kid, private: keyMaterial, public: keyMaterial }, strict())
], { error: 'must be { kid, secret } or { kid, private, public }' })

/** @fastify/rate-limit's `addHeaders`: whether it sends each header it knows, by name. */
export type HeaderSwitches = Partial<Record<string, boolean>>
type Given<K extends keyof RateLimitPluginOptions> = { [N in K]: z.ZodOptional<z.ZodCustom<RateLimitPluginOptions[N]>> }
/** @fastify/rate-limit options handed over as given, by name: the library reads them itself. */
function given<const K extends keyof RateLimitPluginOptions> (...names: K[]): Given<K> {
  return Object.fromEntries(names.map((name) => [name, z.custom().optional()])) as Given<K>
}
/** A duration in @fastify/rate-limit's words ('1 minute'), read as it reads it (@lukeed/ms). */
const duration = z.string().superRefine((value, ctx) => {
  const ms = parseDuration(value)
  const problem = ms === undefined
    ? 'must be milliseconds or a duration such as "1 minute"'
    : ms < 1 ? 'must be at least 1 ms' : ms > MAX_TIMER ? `must be at most ${MAX_TIMER} ms` : undefined
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
})
/**
 * @fastify/rate-limit's options, every name its types know (RateLimitPluginOptions): any other
 * key is a misspelling the library would ignore. `satisfies` keeps the list the library's: a name
 * it adds or drops fails the type check. The three the plugin relies on are checked here.
 */
const rateLimitShape = {
  max: z.union([
    z.number().int('must be a whole number').positive('must be positive'),
    z.custom<(request: FastifyRequest, key: string) => number | Promise<number>>((value) => typeof value === 'function')
  ], { error: 'must be a number or a function' }).default(1000),
  timeWindow: z.union([
    z.number().int('must be a whole number').positive('must be positive').max(MAX_TIMER, { error: `must be at most ${MAX_TIMER} ms` }),
    duration
  ], { error: 'must be milliseconds or a duration string' }).default(60_000),
  keyGenerator: z.custom<(request: FastifyRequest) => string | number | Promise<string | number>>(
    (value) => typeof value === 'function', { error: 'must be a function' }).optional(),
  ...given('skipOnError', 'allowList', 'ipv6Subnet', 'ban', 'hook', 'groupId', 'errorResponseBuilder', 'enableDraftSpec',
    'onExceeding', 'onExceeded', 'onBanReach'),
  // Typed here: the library's types for these two are not exported, and the shipped .d.ts must name them.
  addHeaders: z.custom<HeaderSwitches>().optional(),
  addHeadersOnExceeding: z.custom<HeaderSwitches>().optional(),
  // The library's names, so not refused as misspellings, but the plugin sets `global` and `store`
  // over them (src/rate-limit.ts), and its store reads none of the others.
  ...given('global', 'store', 'redis', 'nameSpace', 'cache', 'continueExceeding', 'exponentialBackoff')
} satisfies Record<keyof RateLimitPluginOptions, z.ZodType>

const optionsSchema = z.strictObject({
  corps: z.array(z.strictObject({ corpId: text(), secret: text(), callback: callbackOptions.optional(), web: webApp.optional() }, strict()), required('an array'))
    .min(1, { error: 'must list at least one corp' })
    .optional()
    .superRefine((corps = [], ctx) => {
      const seen = new Set<string>()
      corps.forEach((corp, index) => {
        if (seen.has(corp.corpId)) {
          ctx.addIssue({ code: 'custom', path: [index, 'corpId'], message: `repeats ${corp.corpId}` })
        }
        seen.add(corp.corpId)
      })
    }),
  jwt: z.strictObject({
    secret: hmacSecret.optional(),
    private: keyMaterial.optional(),
    public: keyMaterial.optional(),
    // Key rotation: the first key signs, every key verifies the tokens carrying its kid.
    keys: z.array(signingKey, required('an array')).min(1, { error: 'must list at least one key' })
      .superRefine((keys, ctx) => {
        const seen = new Set<string>()
        keys.forEach((key, index) => {
          if (seen.has(key.kid)) ctx.addIssue({ code: 'custom', path: [index, 'kid'], message: `repeats ${key.kid}` })
          seen.add(key.kid)
        })
      }).optional(),
    // Its default is fitted to session.refreshTtl (fitDefaults).
    expiresIn: seconds().optional(),
    issuer: text().optional(),
    // Ours by default, so that a JWT the host signs with the same key for itself never passes.
    audience: text().default(DEFAULT_AUDIENCE)
  }, strict()).superRefine((jwt, ctx) => {
    const hasPair = jwt.private !== undefined || jwt.public !== undefined
    if (jwt.keys !== undefined) {
      if (jwt.secret !== undefined || hasPair) ctx.addIssue({ code: 'custom', path: ['keys'], message: 'cannot be combined with secret or private/public keys' })
    } else if (jwt.secret === undefined && !hasPair) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'is required (or private and public keys)' })
    } else if (jwt.secret !== undefined && hasPair) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'cannot be combined with private/public keys' })
    } else if (hasPair && (jwt.private === undefined || jwt.public === undefined)) {
      ctx.addIssue({ code: 'custom', path: [jwt.private === undefined ? 'private' : 'public'], message: 'is required with a key pair' })
    }
  }),
  prefix: z.string(required('a string')).regex(/^\/[^?#]*$/, { error: 'must start with / (e.g. /wecom)' }).default('/wecom'),
  api: z.strictObject({
    baseUrl: z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).default('https://qyapi.weixin.qq.com'),
    authorizeUrl,
    ssoUrl,
    timeout: milliseconds(5000),
    proxy: z.url({ error: 'must be an http(s) proxy URL', protocol: /^https?$/ }).optional(),
    dispatcher: z.custom<Dispatcher>(
      (value) => typeof value === 'object' && value !== null && typeof (value as Dispatcher).dispatch === 'function',
      { error: 'must be an undici Dispatcher' }).optional(),
    breaker: z.union([
      z.literal(false),
      z.strictObject({
        failures: z.number(required('a whole number')).int('must be a whole number').positive('must be positive').default(5),
        ratio: z.number(required('a number')).gt(0, 'must be above 0').max(1, 'must be at most 1').default(0.5),
        // Fitted to api.timeout when absent (fitDefaults).
        window: anyMilliseconds().optional(),
        coolDown: milliseconds(10_000)
      }, strict())
    ], { error: 'must be an object or false' }).prefault({}),
    refusals: z.strictObject({
      config: milliseconds(60_000),
      frequency: milliseconds(60_000),
      concurrency: milliseconds(5_000)
    }, strict()).prefault({}),
    budget: z.union([
      z.literal(false),
      z.number().int('must be a whole number').positive('must be positive')
    ], { error: 'must be a number of calls a minute or false' }).default(2000),
    clientShare: z.number(required('a number')).gt(0, 'must be above 0').max(1, 'must be at most 1').default(0.25)
  }, strict()).prefault({}),
  rateLimit: z.union([
    z.literal(false),
    z.strictObject(rateLimitShape, strict('an object or false'))
  ], { error: 'must be an object of @fastify/rate-limit options or false' }).prefault({}),
  authorize: fn<AuthorizeFn>().optional(),
  hooks: z.strictObject({
    onLogin: fn<SessionHook>().optional(),
    onRefresh: fn<SessionHook>().optional(),
    onLogout: fn<SessionHook>().optional(),
    onRevoke: fn<RevokeHook>().optional(),
    onCorpAuthorized: fn<CorpHook>().optional(),
    onCorpCancelled: fn<CorpHook>().optional()
  }, strict()).prefault({}),
  extendClaims: fn<ExtendClaimsFn>().optional(),
  // How the routes appear in the host's @fastify/swagger document.
  openapi: z.strictObject({
    tag: text().default('wecom'),
    hide: z.boolean(required('true or false')).default(false)
  }, strict()).prefault({}),
  onEvent: fn<EventHook>().optional(),
  miniprogramAppId: text().optional(),
  guard: z.strictObject({
    // Twice the members of a company of 100,000: each may hold the token a refresh replaces and the new one.
    cacheSize: z.number(required('a whole number')).int('must be a whole number').positive('must be positive').default(200_000)
  }, strict()).prefault({}),
  session: z.strictObject({
    // The defaults of these two are fitted to jwt.expiresIn (fitDefaults).
    refreshTtl: seconds().optional(),
    recheckInterval: seconds().default(300),
    maxSessions: z.number(required('a whole number')).int('must be a whole number').positive('must be positive').default(100_000),
    reuseGrace: z.number(required('a number of seconds')).int('must be a whole number')
      .nonnegative('must not be negative').optional()
  }, strict()).prefault({}),
  // The browser surfaces; required when a corp has `web`.
  web: webOptions.optional(),
  // A service provider's apps (third-party and 代开发), beside the corps.
  provider: providerOptions.optional(),
  suites: suitesOptions.optional(),
  sealKeys: sealKeysOptions.optional(),
  store: z.strictObject({
    redis: z.union([
      redisUrl,
      // A Redis Cluster, named by some of its nodes (ioredis finds the others).
      z.array(redisUrl).min(1),
      // Redis or Cluster: one server, a Sentinel set, or a Cluster, as the host configured it.
      z.custom<Redis | Cluster>((value) => typeof value === 'object' && value !== null && typeof (value as Redis).eval === 'function'),
      // Keeps the in-process store even when the host registered @fastify/redis.
      z.literal(false)
    ], { error: 'must be a redis:// URL, a list of Cluster node URLs, or an ioredis client' }).optional(),
    keyPrefix: z.string(required('a string')).default('wecom-auth:')
  }, strict()).prefault({})
}, strict())

/**
 * The options. `prefix` is also a key of Fastify's register options, typed `prefix?: string`
 * there: under `exactOptionalPropertyTypes` the two must agree, so it does not take `undefined`.
 */
export type WecomAuthOptions = Omit<z.input<typeof optionsSchema>, 'prefix'> & { prefix?: string }

/**
 * The defaults tied to another option, fitted to the host's choice of it, so that only two
 * values the host gave can contradict each other: an access token lives at most its session and
 * at least twice the grace, a session at least its access token, and the grace at most half an
 * access token's life (the token a retry is handed again is then still good for the other half;
 * 1 s turns the grace off); the breaker's window is at least twice api.timeout.
 */
function fitDefaults ({ jwt, session, api, ...rest }: z.output<typeof optionsSchema>) {
  const fitted = Math.max(DEFAULT_EXPIRES_IN, 2 * (session.reuseGrace ?? 0))
  const expiresIn = jwt.expiresIn ?? Math.min(fitted, session.refreshTtl ?? fitted)
  const { breaker } = api
  return {
    ...rest,
    // With suites alone, the corps come from installs: none configured.
    corps: rest.corps ?? [],
    // A call is counted when it ends: calls that hang to their deadline end together, after the
    // calls sent beside them. A window of twice the deadline still holds those, and the ratio is
    // of all of them, not of the hung ones alone.
    api: { ...api, breaker: breaker === false ? false as const : { ...breaker, window: breaker.window ?? Math.max(DEFAULT_BREAKER_WINDOW, 2 * api.timeout) } },
    jwt: { ...jwt, expiresIn },
    session: {
      ...session,
      refreshTtl: session.refreshTtl ?? Math.max(DEFAULT_REFRESH_TTL, expiresIn),
      reuseGrace: session.reuseGrace ?? Math.min(DEFAULT_REUSE_GRACE, Math.floor(expiresIn / 2))
    }
  }
}

/** The rules that tie one option to another. */
const checkedSchema = optionsSchema.transform(fitDefaults).superRefine(({ jwt, session, corps, web, provider, suites, sealKeys }, ctx) => {
  checkSuiteOptions({ provider, suites, sealKeys }, ctx)
  // A web app's pages need their origins, for the CSRF checks and the URLs the JS-SDK signs.
  const withWeb = corps.findIndex((corp) => corp.web !== undefined)
  if (withWeb !== -1 && web === undefined) {
    ctx.addIssue({ code: 'custom', path: ['web'], message: `is required when a corp has web (corps[${withWeb}].web): { origins: [...] }` })
  }
  // Cookies without a web app or suite to log in with would be sessions no browser route serves.
  if (withWeb === -1 && suites === undefined && web !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['web'], message: 'needs a corp with web (corps[].web: { agentId, secret }) or suites, the apps whose pages log in' })
  }
  // A session that ends before its access token would leave that token alive past every session
  // operation, off-boarding included.
  if (session.refreshTtl < jwt.expiresIn) {
    ctx.addIssue({ code: 'custom', path: ['session', 'refreshTtl'], message: `must be at least jwt.expiresIn (${jwt.expiresIn})` })
  }
  // The grace hands out the access token of the rotation again: it must still be alive.
  if (session.reuseGrace >= jwt.expiresIn) {
    ctx.addIssue({ code: 'custom', path: ['session', 'reuseGrace'], message: `must be shorter than jwt.expiresIn (${jwt.expiresIn})` })
  }
})
type Parsed = z.output<typeof checkedSchema>

export type { JwtAlgorithm } from './jwt-algorithm.js'

/** A key of the access tokens, its algorithm pinned. `kid` is absent for `jwt.secret` or `jwt.private`/`public`. */
export interface JwtKey {
  kid?: string
  algorithm: JwtAlgorithm
  signKey: string | Buffer
  verifyKey: string | Buffer
}

export interface ResolvedConfig extends Omit<Parsed, 'jwt'> {
  jwt: {
    /** The first signs; each verifies the tokens of its kid. */
    keys: [JwtKey, ...JwtKey[]]
    expiresIn: number
    issuer?: string
    audience: string
  }
}

/**
 * Fastify hands a plugin the keys of its register options too (`prefix` is one of ours): not
 * the host's misspellings.
 */
const REGISTER_OPTIONS = new Set(['logLevel', 'logSerializers'])
function withoutRegisterOptions (input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input
  return Object.fromEntries(Object.entries(input).filter(([key]) => !REGISTER_OPTIONS.has(key)))
}

type KeyOption = { kid?: string, secret: string } | { kid?: string, private: string | Buffer, public: string | Buffer }

function resolveKey (key: KeyOption, where: string): JwtKey {
  const kid = key.kid === undefined ? {} : { kid: key.kid }
  return 'secret' in key
    ? { ...kid, algorithm: 'HS256', signKey: key.secret, verifyKey: key.secret }
    : { ...kid, algorithm: algorithmOf(key.public, `${where}.public`), signKey: key.private, verifyKey: key.public }
}

/**
 * Validates the options once, at registration, and returns a fresh object: the caller's object
 * is never mutated, and a bad option fails the boot with a message naming it.
 */
export function resolveOptions (input: unknown): ResolvedConfig {
  const given = withoutRegisterOptions(input)
  // Said first: without corps or suites the plugin has no one to log in, whatever else is wrong.
  const { corps, suites } = (typeof given === 'object' && given !== null ? given : {}) as { corps?: unknown, suites?: unknown }
  if (typeof given === 'object' && given !== null && corps === undefined && suites === undefined) {
    throw new Error('fastify-wecom-auth: corps is required (an array of { corpId, secret }), unless suites are given')
  }
  const result = checkedSchema.safeParse(given)
  if (!result.success) {
    throw new Error(`fastify-wecom-auth: ${describeIssue(result.error.issues[0]!)}`)
  }
  const { jwt, ...rest } = result.data
  const [first, ...others] = jwt.keys?.map((key, index) => resolveKey(key, `jwt.keys[${index}]`)) ??
    [resolveKey(jwt.secret === undefined ? { private: jwt.private!, public: jwt.public! } : { secret: jwt.secret }, 'jwt')]
  return {
    ...rest,
    jwt: {
      keys: [first!, ...others],
      expiresIn: jwt.expiresIn,
      issuer: jwt.issuer,
      audience: jwt.audience
    }
  }
}
