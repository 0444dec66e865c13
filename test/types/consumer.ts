// Compiled against dist/ by `npm run test:types` (after `npm run build`; .ci/run runs both), strict
// with exactOptionalPropertyTypes and noUncheckedIndexedAccess: what a user's editor sees.
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyWecomAuth, {
  fastifyWecomAuth as named,
  type IssuedTokens,
  type WecomAuthDecorator,
  type WecomAuthOptions,
  type WecomMember,
  type WecomUser
} from 'fastify-wecom-auth'
import { createWecomSimulator, type WecomSimulator } from 'fastify-wecom-auth/testing'

declare module '@fastify/jwt' {
  interface FastifyJWT { user: { admin: boolean } }
}

const options: WecomAuthOptions = {
  corps: [{ corpId: 'ww0123456789abcdef', secret: 'secret' }],
  jwt: { secret: 'a-secret-of-at-least-thirty-two-characters' },
  authorize: (user: WecomMember, request?: FastifyRequest) => user.department?.includes(1) === true && request !== undefined
}

// As examples/app.ts writes them from the environment: an absent value is `undefined`, which the
// options take even under exactOptionalPropertyTypes.
const env: Record<string, string | undefined> = {}
export const fromEnv: WecomAuthOptions = {
  corps: [{ corpId: env.CORP ?? 'ww0123456789abcdef', secret: 's', callback: env.TOKEN === undefined ? undefined : { token: env.TOKEN, encodingAESKey: 'k' } }],
  jwt: { secret: env.JWT ?? 'a-secret-of-at-least-thirty-two-characters' },
  miniprogramAppId: env.APPID,
  api: { baseUrl: env.BASE, proxy: env.PROXY },
  store: { redis: env.REDIS },
  openapi: { tag: env.TAG }
}
export const rotating: WecomAuthOptions = {
  corps: [{ corpId: 'ww0123456789abcdef', secret: 's' }],
  jwt: { keys: [{ kid: 'new', private: 'pem', public: 'pem' }, { kid: 'old', secret: 'a-secret-of-at-least-thirty-two-characters' }] }
}

// @ts-expect-error jwt is required (corps is required unless suites are given: checked at registration)
export const missingJwt: WecomAuthOptions = { corps: [{ corpId: 'ww0123456789abcdef', secret: 's' }] }

export async function main (): Promise<{ accessToken: string, refresh: string | undefined }> {
  const sim: WecomSimulator = await createWecomSimulator()
  const app = Fastify()
  await app.register(fastifyJwt, { secret: 'host-secret' })
  await app.register(fastifyWecomAuth, { ...options, api: { baseUrl: sim.url } })
  await app.register(named, options).after()

  const decorator: WecomAuthDecorator = app.wecom
  app.get('/me', { onRequest: app.wecom.authenticate }, async (request) => {
    const user: WecomUser | null = request.wecomUser
    // @ts-expect-error wecomUser may be null
    const userid: string = request.wecomUser.userid
    const hostUser: { admin: boolean } = request.user
    const data: Record<string, unknown> = await app.wecom.decrypt(request, { encryptedData: '', iv: '' })
    return { user, userid, hostUser, data }
  })
  const issued: IssuedTokens = await decorator.login('code', { corpId: 'ww0123456789abcdef' })
  const accessToken: string = issued.access_token
  const refresh: string | undefined = issued.refresh_token
  await app.wecom.revokeSession('sid')
  await app.wecom.revokeUser('corp', 'user')
  await sim.close()
  return { accessToken, refresh }
}
