import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySwagger from '@fastify/swagger'
import { Validator } from '@seriousme/openapi-schema-validator'
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import fastifyWecomAuth, { type WecomAuthOptions } from '../../src/index.js'
import { CORP_A, JWT_SECRET, SECRET_A } from '../helpers/setup.js'

// The host registers @fastify/swagger first and nothing else: the plugin's routes come out
// documented, in a document an OpenAPI 3 validator accepts, however the host writes its own routes.

type Host = 'plain' | 'json-schema routes' | 'zod routes'
interface Operation {
  tags?: string[]
  summary?: string
  security?: unknown[]
  requestBody?: { required?: boolean, content: Record<string, { schema: { required?: string[], properties?: Record<string, unknown> } }> }
  responses: Record<string, { content?: Record<string, { schema: { properties: Record<string, { enum?: unknown[] }> } }> }>
}
interface Document {
  paths: Record<string, Record<string, Operation>>
  components?: { securitySchemes?: Record<string, unknown> }
}

type Spec = Parameters<Validator['validate']>[0]
// One validator for the file: each compiles OpenAPI's schema once per version, some 0.5 CPU-s.
const validator = new Validator()

const ENCODING_AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'

async function documentOf (t: { teardown (fn: () => unknown): void }, host: Host, options: Partial<WecomAuthOptions> = {}, openapi: object = {}): Promise<{ app: FastifyInstance, doc: Document }> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (host === 'zod routes') {
    app.setValidatorCompiler(validatorCompiler)
    app.setSerializerCompiler(serializerCompiler)
  }
  await app.register(fastifySwagger, {
    openapi: { info: { title: 'host', version: '1.0.0' }, ...openapi },
    // The host's transform for its own zod routes: the plugin's routes opt out of it.
    ...(host === 'zod routes' ? { transform: jsonSchemaTransform } : {})
  })
  await app.register(fastifyWecomAuth, {
    corps: [{ corpId: CORP_A, secret: SECRET_A, callback: { token: 'callback-token', encodingAESKey: ENCODING_AES_KEY } }],
    jwt: { secret: JWT_SECRET },
    ...options
  })
  if (host === 'json-schema routes') {
    app.post('/items', {
      schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, response: { 200: { type: 'object', properties: { id: { type: 'integer' } } } } }
    }, async () => ({ id: 1 }))
  }
  if (host === 'zod routes') {
    app.withTypeProvider<ZodTypeProvider>().post('/items', {
      schema: { body: z.object({ name: z.string() }), response: { 200: z.object({ id: z.number() }) } }
    }, async () => ({ id: 1 }))
  }
  await app.ready()
  return { app, doc: app.swagger() as unknown as Document }
}

for (const host of ['plain', 'json-schema routes', 'zod routes'] as const) {
  t.test(`a host with ${host}: a valid OpenAPI document with the plugin's routes in it`, async (t) => {
    const { app, doc } = await documentOf(t, host)
    const result = await validator.validate(doc as unknown as Spec)
    t.ok(result.valid, JSON.stringify(result.errors))

    const login = doc.paths['/wecom/login']!.post!
    t.same(login.tags, ['wecom'])
    t.ok(login.summary)
    t.equal(login.requestBody?.required, true)
    const body = login.requestBody!.content['application/json']!.schema
    t.same(body.required, ['code'])
    t.ok(body.properties?.corpId, 'corpId documented, optional')
    t.same(Object.keys(login.responses), ['200', '400', '401', '403', '409', '429', '502', '503'])
    const conflict = login.responses['409']!.content!['application/json']!.schema.properties
    t.same(conflict.code?.enum, ['WECOM_CORP_MISMATCH'])
    t.ok(conflict.corpId)
    t.same(login.responses['403']!.content!['application/json']!.schema.properties.code?.enum, ['WECOM_CORP_NOT_ALLOWED', 'WECOM_USER_FORBIDDEN'])

    const logout = doc.paths['/wecom/logout']!.post!
    t.equal(logout.requestBody?.required, false, 'logout\'s body is optional')
    t.ok(logout.responses['204'])
    t.same(logout.security, [{ wecomBearer: [] }, {}])
    t.same(doc.components?.securitySchemes?.wecomBearer, {
      type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token of fastify-wecom-auth'
    })
    t.ok(doc.paths['/wecom/refresh']?.post)
    t.ok(doc.paths['/wecom/callback']?.get)
    t.ok(doc.paths['/wecom/callback']?.post)
    if (host !== 'plain') t.ok(doc.paths['/items']?.post, 'the host\'s own route is documented too')

    // The document changed nothing of the routes: validation still answers as Fastify does.
    const invalid = await app.inject({ method: 'POST', url: '/wecom/login', payload: {} })
    t.equal(invalid.statusCode, 400)
    t.equal(invalid.json().message, 'body must have required property \'code\'')
    if (host !== 'plain') t.equal((await app.inject({ method: 'POST', url: '/items', payload: {} })).statusCode, 400)
  })
}

t.test('openapi.tag names the routes\' tag; openapi.hide leaves them out', async (t) => {
  const tagged = await documentOf(t, 'plain', { openapi: { tag: 'auth' } })
  t.same(tagged.doc.paths['/wecom/login']!.post!.tags, ['auth'])
  t.same(tagged.doc.paths['/wecom/logout']!.post!.tags, ['auth'])
  const hidden = await documentOf(t, 'json-schema routes', { openapi: { hide: true } })
  t.same(Object.keys(hidden.doc.paths), ['/items'])
  t.ok((await validator.validate(hidden.doc as unknown as Spec)).valid)
  t.equal((await hidden.app.inject({ method: 'POST', url: '/wecom/login', payload: {} })).statusCode, 400, 'hidden, still served')
})

// @fastify/swagger strips the servers' base path from every route it documents (stripBasePath):
// logout's operation, which the plugin writes itself, must land beside the others.
t.test('a server URL with a base path is stripped from logout\'s path as from the others', async (t) => {
  const servers = [
    [{ url: 'http://x/base' }],
    [{ url: 'http://{host}/{base}', variables: { host: { default: 'x' }, base: { default: 'base' } } }],
    [{ url: '/base' }]
  ]
  for (const server of servers) {
    const { doc } = await documentOf(t, 'plain', { prefix: '/base/wecom' }, { servers: server })
    t.same(Object.keys(doc.paths).filter((path) => path.startsWith('/base')), [], `${server[0]!.url}: no path keeps the base`)
    t.ok(doc.paths['/wecom/login']?.post, 'login under the stripped path')
    t.equal(doc.paths['/wecom/logout']?.post?.requestBody?.required, false, 'logout beside it, its body optional')
    const result = await validator.validate(doc as unknown as Spec)
    t.ok(result.valid, JSON.stringify(result.errors))
  }
})

t.test('openapi options are checked, naming the bad one', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(fastifyWecomAuth, {
      corps: [{ corpId: CORP_A, secret: SECRET_A }], jwt: { secret: JWT_SECRET }, openapi: { hide: 'yes' as unknown as boolean }
    })
  }, { message: 'fastify-wecom-auth: openapi.hide must be true or false' })
})

t.test('with EC keys in jwt.keys, the JWKS route is documented too', async (t) => {
  const { generateKeyPairSync } = await import('node:crypto')
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { doc } = await documentOf(t, 'plain', {
    jwt: {
      keys: [{
        kid: 'ec-1',
        private: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        public: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
      }]
    }
  })
  t.ok(doc.paths['/wecom/.well-known/jwks.json']?.get)
  const result = await validator.validate(doc as unknown as Spec)
  t.ok(result.valid, JSON.stringify(result.errors))
})

t.test('with web, the browser\'s routes, the JS-SDK signature and the sessions are documented, and the document is valid', async (t) => {
  const { doc } = await documentOf(t, 'plain', {
    corps: [{ corpId: CORP_A, secret: SECRET_A, web: { agentId: 1000005, secret: 'web-secret-0123456789' } }],
    web: { origins: ['https://app.example.com'] }
  })
  for (const [path, method] of [
    ['/wecom/web/login', 'get'], ['/wecom/web/login/params', 'get'], ['/wecom/web/callback', 'get'],
    ['/wecom/jssdk/signature', 'post'], ['/wecom/sessions', 'get'], ['/wecom/sessions', 'delete'], ['/wecom/sessions/{sid}', 'delete']
  ] as const) {
    t.ok((doc.paths[path] as Record<string, unknown> | undefined)?.[method], `${method.toUpperCase()} ${path}`)
  }
  const result = await validator.validate(doc as unknown as Spec)
  t.ok(result.valid, JSON.stringify(result.errors))
})

t.test('with suites, the suites\' command callback is documented, and the document is valid', async (t) => {
  const { suiteOptions } = await import('../helpers/suites.js')
  const { doc } = await documentOf(t, 'plain', suiteOptions as Partial<WecomAuthOptions>)
  for (const method of ['get', 'post'] as const) {
    t.ok((doc.paths['/wecom/suite/callback'] as Record<string, unknown> | undefined)?.[method], `${method.toUpperCase()} /wecom/suite/callback`)
  }
  const result = await validator.validate(doc as unknown as Spec)
  t.ok(result.valid, JSON.stringify(result.errors))
})
