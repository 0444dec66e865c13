import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import buildGetJwks from 'get-jwks'
import { resolveOptions } from '../../src/options.js'
import { createWecomSimulator, type WecomSimulator } from '../../src/testing/simulator.js'
import { CORP_A, SECRET_A, buildApp, es256Pem, simulatorCorps } from '../helpers/setup.js'

// jwt.keys: the first key signs (its kid in the header), every key verifies; the asymmetric ones
// are published at /.well-known/jwks.json for services that verify without a secret.

const SECRET_1 = 'first-jwt-secret-that-is-long-enough-0123456789'
const SECRET_2 = 'second-jwt-secret-that-is-long-enough-012345678'

function headerOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

async function simulator (t: { teardown (fn: () => unknown): void }): Promise<WecomSimulator> {
  const sim = await createWecomSimulator({ corps: simulatorCorps() })
  t.teardown(() => sim.close())
  return sim
}

async function appWith (t: { teardown (fn: () => unknown): void }, sim: WecomSimulator, keys: unknown[]) {
  const { app } = await buildApp({ jwt: { keys } as never }, sim)
  t.teardown(() => app.close())
  const login = async () => {
    const res = await app.inject({ method: 'POST', url: '/wecom/login', payload: { code: sim.issueCode(CORP_A, 'zhangsan') } })
    return res.json().access_token as string
  }
  const me = async (token: string) => app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  return { app, login, me }
}

t.test('rotation: tokens of the old key pass until the key is removed', async (t) => {
  const sim = await simulator(t)
  const before = await appWith(t, sim, [{ kid: 'k1', secret: SECRET_1 }])
  const old = await before.login()
  t.equal(headerOf(old).kid, 'k1')
  t.equal(headerOf(old).alg, 'HS256', 'the algorithm stays pinned')

  const rotated = await appWith(t, sim, [{ kid: 'k2', secret: SECRET_2 }, { kid: 'k1', secret: SECRET_1 }])
  const fresh = await rotated.login()
  t.equal(headerOf(fresh).kid, 'k2', 'the first key signs')
  t.equal((await rotated.me(old)).statusCode, 200, 'the old key still verifies')
  t.equal((await rotated.me(fresh)).statusCode, 200)

  const after = await appWith(t, sim, [{ kid: 'k2', secret: SECRET_2 }])
  const refused = await after.me(old)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'WECOM_TOKEN_INVALID', 'the old key removed: its tokens are refused')
  t.equal((await after.me(fresh)).statusCode, 200)

  // A token naming a kid of another key is checked with that key only: a forged kid is no way in.
  const forged = [Buffer.from(JSON.stringify({ ...headerOf(old), kid: 'k2' })).toString('base64url'), ...old.split('.').slice(1)].join('.')
  t.equal((await rotated.me(forged)).json().code, 'WECOM_TOKEN_INVALID')
})

t.test('the JWKS: another service verifies the tokens with @fastify/jwt and get-jwks, across a rotation', async (t) => {
  const sim = await simulator(t)
  const [first, second] = [es256Pem(), es256Pem()]
  // Each app of the rotation serves its JWKS on the loopback; the verifier fetches from the current one.
  const serve = async (keys: unknown[]) => {
    const issuer = await appWith(t, sim, keys)
    await issuer.app.listen({ host: '127.0.0.1', port: 0 })
    const address = issuer.app.server.address()
    return { ...issuer, origin: typeof address === 'object' && address !== null ? `http://127.0.0.1:${address.port}` : '' }
  }
  const issuer = await serve([{ kid: 'ec-1', ...first }, { kid: 'hmac', secret: SECRET_1 }])
  let origin = issuer.origin

  const jwks = await issuer.app.inject({ method: 'GET', url: '/wecom/.well-known/jwks.json' })
  t.equal(jwks.statusCode, 200)
  t.equal(jwks.headers['cache-control'], 'public, max-age=300')
  t.match(jwks.json(), { keys: [{ kty: 'EC', crv: 'P-256', kid: 'ec-1', alg: 'ES256', use: 'sig' }] })
  t.equal(jwks.json().keys.length, 1, 'the HMAC key is never published')
  t.notOk(jwks.json().keys[0].d, 'no private part')

  const verifier = Fastify()
  t.teardown(() => verifier.close())
  const getJwks = buildGetJwks({ jwksPath: '/wecom/.well-known/jwks.json' })
  await verifier.register(fastifyJwt, {
    decode: { complete: true },
    secret: async (_request: unknown, token: { header: { kid?: string, alg?: string } }) =>
      getJwks.getPublicKey({ domain: origin, kid: token.header.kid, alg: token.header.alg }),
    verify: { allowedAud: 'fastify-wecom-auth', algorithms: ['ES256'] }
  } as never)
  verifier.get('/whoami', async (request) => {
    await request.jwtVerify()
    return { userid: (request.user as { userid: string }).userid }
  })
  const verify = (token: string) => verifier.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } })

  const old = await issuer.login()
  t.same((await verify(old)).json(), { userid: 'zhangsan' })

  // The new key first, the old one kept while its tokens live: both published.
  const rotated = await serve([{ kid: 'ec-2', ...second }, { kid: 'ec-1', ...first }])
  origin = rotated.origin
  t.same((await rotated.app.inject({ method: 'GET', url: '/wecom/.well-known/jwks.json' })).json().keys.map((key: { kid: string }) => key.kid), ['ec-2', 'ec-1'])
  const fresh = await rotated.login()
  t.equal(headerOf(fresh).kid, 'ec-2')
  t.same((await verify(fresh)).json(), { userid: 'zhangsan' })
  t.same((await verify(old)).json(), { userid: 'zhangsan' }, 'the old key\'s tokens still verify elsewhere')
  t.equal((await rotated.me(old)).statusCode, 200, 'and pass the guard')

  // The old key removed: its tokens pass neither.
  const after = await serve([{ kid: 'ec-2', ...second }])
  origin = after.origin
  // get-jwks finds no key ec-1 and throws, which @fastify/jwt answers as a 500: refused all the same.
  t.not((await verify(old)).statusCode, 200)
  t.equal((await after.me(old)).statusCode, 401)
  t.same((await verify(fresh)).json(), { userid: 'zhangsan' })
})

t.test('no JWKS route without an asymmetric key with a kid', async (t) => {
  const sim = await simulator(t)
  const hmac = await appWith(t, sim, [{ kid: 'k1', secret: SECRET_1 }])
  t.equal((await hmac.app.inject({ method: 'GET', url: '/wecom/.well-known/jwks.json' })).statusCode, 404)
})

t.test('jwt.keys is checked, naming the bad key', async (t) => {
  const base = { corps: [{ corpId: CORP_A, secret: SECRET_A }] }
  const pair = es256Pem()
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [] } }), { message: 'fastify-wecom-auth: jwt.keys must list at least one key' })
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [{ kid: 'a', secret: SECRET_1 }, { kid: 'a', secret: SECRET_2 }] } }),
    { message: 'fastify-wecom-auth: jwt.keys[1].kid repeats a' })
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [{ kid: 'a', secret: 'short' }] } }),
    { message: 'fastify-wecom-auth: jwt.keys[0].secret must be at least 32 characters (HS256)' })
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [{ kid: 'a', private: pair.private }] } }), /jwt\.keys\[0\]/)
  t.throws(() => resolveOptions({ ...base, jwt: { secret: SECRET_1, keys: [{ kid: 'a', secret: SECRET_2 }] } }),
    { message: 'fastify-wecom-auth: jwt.keys cannot be combined with secret or private/public keys' })
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [{ kid: 'a', private: pair.private, public: 'nope' }] } }),
    { message: 'fastify-wecom-auth: jwt.keys[0].public is not a valid PEM public key' })
  // ES256 is P-256's (RFC 7518 §3.4): another curve's 64-byte signatures would pass for P-256's
  // twins in the guard's cache (found in review); RSA below 2048 bits is refused as well.
  const pem = { privateKeyEncoding: { format: 'pem', type: 'pkcs8' }, publicKeyEncoding: { format: 'pem', type: 'spki' } } as const
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1', ...pem })
  t.throws(() => resolveOptions({ ...base, jwt: { private: k1.privateKey, public: k1.publicKey } }),
    { message: 'fastify-wecom-auth: jwt.public must be an EC (P-256) or RSA (2048 bits or more) key, not an EC key on secp256k1' })
  const small = generateKeyPairSync('rsa', { modulusLength: 1024, ...pem })
  t.throws(() => resolveOptions({ ...base, jwt: { keys: [{ kid: 'a', secret: SECRET_1 }, { kid: 'b', private: small.privateKey, public: small.publicKey }] } }),
    { message: 'fastify-wecom-auth: jwt.keys[1].public must be an EC (P-256) or RSA (2048 bits or more) key, not an RSA key of 1024 bits' })
  const options = { ...base, jwt: { keys: [{ kid: 'a', secret: SECRET_1 }] } }
  const copy = JSON.stringify(options)
  t.same(resolveOptions(options).jwt.keys, [{ kid: 'a', algorithm: 'HS256', signKey: SECRET_1, verifyKey: SECRET_1 }])
  t.equal(JSON.stringify(options), copy, 'the caller\'s object is not changed')
})

t.test('a rotation keeps the sealed session_keys and the refresh tokens\' proof until the old key goes', async (t) => {
  const { createVault } = await import('../../src/sessions/vault.js')
  const { createRefreshTokens } = await import('../../src/sessions/refresh-tokens.js')
  const sealed = createVault(SECRET_1).seal('c2Vzc2lvbmtleTEyMzQ1Ng==')
  t.equal(createVault(SECRET_2, SECRET_1).open(sealed), 'c2Vzc2lvbmtleTEyMzQ1Ng==')
  t.equal(createVault(SECRET_2).open(sealed), null)
  t.not(createVault(SECRET_2, SECRET_1).seal('x').length, 0)

  const old = createRefreshTokens(SECRET_1)
  const presented = old.parse(old.first('s'.repeat(16)))!
  t.ok(createRefreshTokens(SECRET_2, SECRET_1).authentic(presented))
  t.notOk(createRefreshTokens(SECRET_2).authentic(presented))
})
