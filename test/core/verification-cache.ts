import { randomUUID } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createGuard, kClaims } from '../../src/guard.js'
import Fastify from 'fastify'
import { createAccessTokens, registerJwtEngine, type AccessClaims, type AccessTokens } from '../../src/jwt.js'
import { resolveOptions } from '../../src/options.js'
import { Revocations } from '../../src/sessions/revocations.js'
import { VerificationCache } from '../../src/verification-cache.js'
import { CORP_A, es256Pem, JWT_SECRET, SECRET_A } from '../helpers/setup.js'

const config = resolveOptions({ corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET, expiresIn: 600 } })

/** A clock the test moves; every part of the guard under test reads it. */
function clock (start = Date.now()) {
  let at = start
  return { now: () => at, advance: (ms: number) => { at += ms } }
}

/** The plugin's signer and verifier, the verifier counting its calls: a call is a cache miss. */
async function counted (): Promise<AccessTokens & { verifications: number }> {
  const tokens = createAccessTokens(config.jwt, { corpIds: new Set([CORP_A]), suiteIds: new Set() }, await registerJwtEngine(Fastify(), config.jwt))
  const wrapped = {
    verifications: 0,
    sign: tokens.sign,
    verify (token: string) {
      wrapped.verifications++
      return tokens.verify(token)
    }
  }
  return wrapped
}

/** The guard, called as Fastify calls an onRequest hook; resolves to the error code or 'ok'. */
async function guardOf (options: { capacity?: number, now?: () => number } = {}) {
  const tokens = await counted()
  const revoked = new Revocations(options.now)
  const cache = new VerificationCache(options.capacity ?? 1000, options.now)
  const authenticate = createGuard({ tokens, revoked, cache })
  const check = (token: string) => new Promise<string>((resolve) => {
    const request = { headers: { authorization: `Bearer ${token}` } } as unknown as FastifyRequest
    const reply = { header: () => reply } as unknown as FastifyReply
    authenticate(request, reply, (error) => resolve(error === undefined ? (request[kClaims] === null ? 'no claims' : 'ok') : (error as unknown as { code: string }).code))
  })
  return { tokens, revoked, cache, check }
}

const member = (n: number) => ({ userid: `u${n}`, corpid: CORP_A, sid: randomUUID() })

t.test('a cached token is refused once it expires, from its exp on, like a full verification', async (t) => {
  const time = clock()
  const g = await guardOf({ now: time.now })
  const token = g.tokens.sign(member(1))
  const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as AccessClaims
  t.equal(await g.check(token), 'ok')
  t.equal(await g.check(token), 'ok')
  t.equal(g.tokens.verifications, 1, 'the second request was served from the cache')

  time.advance(exp * 1000 - time.now() - 1)
  t.equal(await g.check(token), 'ok', 'one millisecond before exp')
  time.advance(1)
  t.equal(await g.check(token), 'WECOM_TOKEN_EXPIRED', 'at exp (fast-jwt refuses from the millisecond after: the cache is never later)')
  t.equal(g.cache.size, 0, 'and the entry is gone')
})

t.test('a cached token of a revoked session, or of an off-boarded member, is refused on the next request', async (t) => {
  const time = clock()
  const g = await guardOf({ now: time.now })
  const [a, b] = [member(1), member(2)]
  const tokenA = g.tokens.sign(a)
  const tokenB = g.tokens.sign(b)
  t.equal(await g.check(tokenA), 'ok')
  t.equal(await g.check(tokenB), 'ok')

  g.revoked.add([{ sid: a.sid, until: time.now() + 600_000 }])
  t.equal(await g.check(tokenA), 'WECOM_TOKEN_REVOKED', 'revoked session')
  t.equal(await g.check(tokenB), 'ok', 'another session passes')

  // The member's not-before: every token issued until it is refused, one issued after passes.
  time.advance(5)
  g.revoked.add([{ corpid: CORP_A, userid: b.userid, notBefore: Date.now(), until: time.now() + 600_000 }])
  t.equal(await g.check(tokenB), 'WECOM_TOKEN_REVOKED', 'off-boarded member, token cached before')
  await new Promise((resolve) => setTimeout(resolve, 5))
  const after = g.tokens.sign({ ...b, sid: randomUUID() })
  t.equal(await g.check(after), 'ok', 'a token issued after the not-before passes')
  t.equal(await g.check(after), 'ok', 'also from the cache')
  t.equal(g.tokens.verifications, 3, 'every refusal above came with the token cached')
})

t.test('the cache never holds more than its capacity, dropping the oldest first', async (t) => {
  const time = clock()
  const cache = new VerificationCache(100, time.now)
  const claims = (n: number): AccessClaims => ({
    userid: `u${n}`, corpid: CORP_A, sid: `s${n}`, surface: 'miniprogram', iat: Math.floor(time.now() / 1000), iat_ms: time.now(), exp: Math.floor(time.now() / 1000) + 600, extra: {}
  })
  let largest = 0
  for (let n = 0; n < 1000; n++) {
    cache.add(VerificationCache.keyOf(`token-${n}`), claims(n))
    largest = Math.max(largest, cache.size)
  }
  t.equal(largest, 100, 'never above capacity')
  t.equal(cache.get(VerificationCache.keyOf('token-899')), undefined, 'the oldest are gone')
  t.equal((cache.get(VerificationCache.keyOf('token-900')) as AccessClaims).userid, 'u900', 'the newest 100 are kept')
  t.equal((cache.get(VerificationCache.keyOf('token-999')) as AccessClaims).userid, 'u999')

  // Expired entries leave as new ones come, two per insertion, so the cache shrinks to what is in use.
  time.advance(601_000)
  for (let n = 1000; n < 1010; n++) cache.add(VerificationCache.keyOf(`token-${n}`), claims(n))
  t.equal(cache.size, 100 - 21 + 10, 'ten insertions dropped 21 expired entries: room for the first, then two each')
  for (let n = 1010; n < 1100; n++) cache.add(VerificationCache.keyOf(`token-${n}`), claims(n))
  t.equal(cache.size, 100, 'and the ring keeps counting right as it wraps')
  t.equal((cache.get(VerificationCache.keyOf('token-1000')) as AccessClaims).userid, 'u1000')
})

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** The n-th pair of base64url characters that is not `pair`. */
function tamper (pair: string, n: number): string {
  const other = (k: number) => BASE64URL[k % 64] + BASE64URL[Math.floor(k / 64) % 64]
  return other(n) === pair ? other(n + 1) : other(n)
}

t.test('invalid tokens never enter the cache, nor push a valid one out', async (t) => {
  const g = await guardOf({ capacity: 10 })
  const valid = g.tokens.sign(member(1))
  t.equal(await g.check(valid), 'ok')

  const [header, payload, signature] = valid.split('.')
  const otherKey = createSigner({ key: 'another-secret-that-is-long-enough-0123456789', header: { alg: 'HS256', typ: 'at+jwt' } })
  const now = Math.floor(Date.now() / 1000)
  const refused = new Map<string, number>()
  for (let n = 0; n < 300; n++) {
    const forged = Buffer.from(JSON.stringify({ userid: `u${n}`, corpid: CORP_A, sid: 's', iat: now, exp: now + 60 })).toString('base64url')
    const bad = [
      `${header}.${forged}.${signature}`,
      otherKey({ userid: `u${n}`, corpid: CORP_A, sid: 's', aud: 'fastify-wecom-auth' }),
      // Two characters in the middle: each carries 6 whole bits of the signature. The last one carries
      // 4 and the padding, so a change there can decode to the very same signature: still valid.
      `${header}.${payload}.${signature.slice(0, 20)}${tamper(signature.slice(20, 22), n)}${signature.slice(22)}`
    ]
    for (const token of bad) {
      const code = await g.check(token)
      refused.set(code, (refused.get(code) ?? 0) + 1)
    }
  }
  t.same(Object.fromEntries(refused), { WECOM_TOKEN_INVALID: 900 }, 'every one refused')
  t.equal(g.cache.size, 1, 'the cache still holds only the valid token')
  const before = g.tokens.verifications
  t.equal(await g.check(valid), 'ok')
  t.equal(g.tokens.verifications, before, 'which is still served from it')
})

t.test('a token sharing a cached token\'s signature but not its payload is verified in full, and refused', async (t) => {
  const g = await guardOf()
  const valid = g.tokens.sign(member(1))
  t.equal(await g.check(valid), 'ok')
  const [header, payload, signature] = valid.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const boss = Buffer.from(JSON.stringify({ ...claims, userid: 'boss' })).toString('base64url')
  const before = g.tokens.verifications
  t.equal(await g.check(`${header}.${boss}.${signature}`), 'WECOM_TOKEN_INVALID')
  t.equal(g.tokens.verifications, before + 1, 'a miss: the key is the digest of the whole token, not of a part of it')
  t.not(VerificationCache.keyOf(`${header}.${boss}.${signature}`), VerificationCache.keyOf(valid))
  t.equal(VerificationCache.keyOf(valid).length, 32, '32 bytes of SHA-256')
})

/** The other spellings of a signature: its last character with the unused low bits set otherwise. */
function spellings (signature: string): string[] {
  // 2 unused bits when the byte count leaves a remainder of 2 (HS256's 32 bytes), 4 when of 1 (64).
  const unused = (Buffer.from(signature, 'base64url').length % 3) === 2 ? 2 : 4
  const last = BASE64URL.indexOf(signature.at(-1)!)
  return Array.from({ length: 2 ** unused }, (_, bits) => last - (last % 2 ** unused) + bits)
    .filter((index) => index !== last)
    .map((index) => signature.slice(0, -1) + BASE64URL[index])
}

t.test('another spelling of a valid signature is refused, and takes no cache entry', async (t) => {
  for (const jwt of [{ secret: JWT_SECRET }, es256Pem()]) {
    const resolved = resolveOptions({ corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt }).jwt
    const tokens = createAccessTokens(resolved, { corpIds: new Set([CORP_A]), suiteIds: new Set() }, await registerJwtEngine(Fastify(), resolved))
    const cache = new VerificationCache(100)
    const authenticate = createGuard({ tokens, revoked: new Revocations(), cache })
    const check = (token: string) => new Promise<string>((resolve) => {
      const request = { headers: { authorization: `Bearer ${token}` } } as unknown as FastifyRequest
      authenticate(request, {} as FastifyReply, (error) => resolve(error === undefined ? 'ok' : (error as unknown as { code: string }).code))
    })
    const valid = tokens.sign(member(1))
    const [head, payload, signature] = valid.split('.')
    const others = spellings(signature)
    t.equal(others.length, 'secret' in jwt ? 3 : 15, `${others.length} other spellings decode to the same bytes`)
    for (const other of others) t.same(Buffer.from(other, 'base64url'), Buffer.from(signature, 'base64url'))
    t.equal(await check(valid), 'ok')
    const refused = await Promise.all(others.map((other) => check(`${head}.${payload}.${other}`)))
    t.same(new Set(refused), new Set(['WECOM_TOKEN_INVALID']), 'every other spelling is refused')
    t.equal(cache.size, 1, 'and none took an entry')
  }
})

t.test('a revoked token first seen after its revocation is refused and not cached', async (t) => {
  const g = await guardOf()
  const revokedMember = member(1)
  g.revoked.add([{ sid: revokedMember.sid, until: Date.now() + 600_000 }])
  const token = g.tokens.sign(revokedMember)
  t.equal(await g.check(token), 'WECOM_TOKEN_REVOKED')
  t.equal(await g.check(token), 'WECOM_TOKEN_REVOKED')
  t.equal(g.cache.size, 0, 'an ended session\'s tokens take no room')
  t.equal(g.tokens.verifications, 2, 'each was verified in full')
})

t.test('a revocation refuses through the millisecond of its until, as fast-jwt accepts a token through its exp', async (t) => {
  let now = 1_700_000_000_000
  const revoked = new Revocations(() => now)
  const claims = { sid: 's1', corpid: CORP_A, userid: 'u1', iat_ms: now - 1 }
  revoked.add([{ sid: 's1', until: now + 600_000 }, { corpid: CORP_A, userid: 'u2', notBefore: now, until: now + 600_000 }])
  now += 600_000
  t.ok(revoked.refuses(claims), 'the session, at until')
  t.ok(revoked.refuses({ ...claims, sid: 's2', userid: 'u2' }), 'the member, at until')
  now += 1
  t.notOk(revoked.refuses(claims), 'a millisecond later every token it could refuse has expired')
  t.notOk(revoked.refuses({ ...claims, sid: 's2', userid: 'u2' }))
})

t.test('an ES256 token takes one cache entry, whichever of its two valid signatures (r, s) and (r, n − s) comes', async (t) => {
  const resolved = resolveOptions({ corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: es256Pem() }).jwt
  const plain = createAccessTokens(resolved, { corpIds: new Set([CORP_A]), suiteIds: new Set() }, await registerJwtEngine(Fastify(), resolved))
  let verifications = 0
  const tokens = { sign: plain.sign, verify: (token: string) => { verifications++; return plain.verify(token) } }
  const cache = new VerificationCache(100, Date.now, true)
  const authenticate = createGuard({ tokens, revoked: new Revocations(), cache })
  const check = (token: string) => new Promise<string>((resolve) => {
    const request = { headers: { authorization: `Bearer ${token}` } } as unknown as FastifyRequest
    authenticate(request, {} as FastifyReply, (error) => resolve(error === undefined ? 'ok' : (error as unknown as { code: string }).code))
  })
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
  const twinOf = (token: string) => {
    const [head, payload, signature] = token.split('.')
    const bytes = Buffer.from(signature!, 'base64url')
    const s = BigInt(`0x${bytes.subarray(32).toString('hex')}`)
    Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex').copy(bytes, 32)
    return `${head}.${payload}.${bytes.toString('base64url')}`
  }
  // The plugin signs in low-s form only; its high-s twin is as valid (ECDSA's malleability).
  for (let i = 0; i < 40; i++) {
    const s = BigInt(`0x${Buffer.from(plain.sign(member(100 + i)).split('.')[2]!, 'base64url').subarray(32).toString('hex')}`)
    t.ok(s <= n / 2n, `token ${i}: signed with the low s`)
  }
  // Both forms first seen either way: the issued low-s token, and its high-s twin.
  for (let i = 0; i < 8; i++) {
    const token = plain.sign(member(i))
    const twin = twinOf(token)
    t.not(twin, token)
    t.ok(plain.verify(twin).ok, 'the twin passes a full verification: serving it from the cache changes no answer')
    const [first, second] = i % 2 === 0 ? [token, twin] : [twin, token]
    const before = verifications
    t.equal(await check(first), 'ok')
    t.equal(await check(second), 'ok')
    t.equal(verifications, before + 1, 'the second form is served from the first\'s entry')
    t.equal(cache.size, i + 1, 'one entry a token')
    const [head, payload, signature] = second.split('.')
    for (const other of spellings(signature!)) t.equal(await check(`${head}.${payload}.${other}`), 'WECOM_TOKEN_INVALID', 'another spelling of a twin is still refused')
    t.equal(cache.size, i + 1, 'and takes no entry')
  }
  const forged = twinOf(plain.sign(member(99))).replace(/\.([^.]+)$/, (_m, sig: string) => `.${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`)
  t.equal(await check(forged), 'WECOM_TOKEN_INVALID', 'a damaged signature is refused')
})

t.test('a refused token leaves Error.stackTraceLimit as it was, whatever fast-jwt threw', async (t) => {
  const tokens = await counted()
  const valid = tokens.sign(member(1))
  const before = Error.stackTraceLimit
  for (const token of [`${valid.slice(0, -2)}AA`, 'not.a.token', valid, '']) {
    tokens.verify(token)
    t.equal(Error.stackTraceLimit, before)
  }
  t.equal(tokens.verify(`${valid.slice(0, -2)}AA`).ok, false, 'still refused')
  t.equal(new Error('after').stack?.includes('\n    at '), true, 'other errors keep their stacks')
})

t.test('where Error.stackTraceLimit cannot be written (frozen intrinsics), a refused token is still a 401, not a throw', async (t) => {
  const tokens = await counted()
  const valid = tokens.sign(member(1))
  const descriptor = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')!
  Object.defineProperty(Error, 'stackTraceLimit', { ...descriptor, writable: false })
  try {
    t.same(tokens.verify(`${valid.slice(0, -2)}AA`), { ok: false, reason: 'invalid' })
    t.equal(tokens.verify(valid).ok, true)
  } finally {
    Object.defineProperty(Error, 'stackTraceLimit', descriptor)
  }
})
