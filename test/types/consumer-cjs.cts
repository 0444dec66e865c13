// The CommonJS side of the package, as a `.cts` file (or `require()`) resolves it: type-checked
// by test/types.test.ts like consumer.ts.
import Fastify from 'fastify'
import fastifyWecomAuth, { InvalidCodeError, type WecomAuthOptions, type WecomUser } from 'fastify-wecom-auth'
import { createWecomSimulator } from 'fastify-wecom-auth/testing'

const options: WecomAuthOptions = {
  corps: [{ corpId: 'ww0123456789abcdef', secret: 'secret' }],
  jwt: { secret: 'a-secret-of-at-least-thirty-two-characters' }
}

export async function main (): Promise<string> {
  const sim = await createWecomSimulator()
  const app = Fastify()
  await app.register(fastifyWecomAuth, { ...options, api: { baseUrl: sim.url } })
  app.get('/me', { onRequest: app.wecom.authenticate }, async (request) => {
    const user: WecomUser | null = request.wecomUser
    return { user }
  })
  await sim.close()
  return new InvalidCodeError().code
}
