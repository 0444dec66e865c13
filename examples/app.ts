// A host app as a team would write it: its own routes, protected by the plugin. In a project of
// your own, import from 'fastify-wecom-auth' and 'fastify-wecom-auth/testing'; the example imports
// the sources so that `npm start` works on a fresh clone without a build.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWecomAuth, { type WecomAuthOptions } from '../src/index.js'
import { createWecomSimulator, type WecomSimulator } from '../src/testing/simulator.js'

export const DEMO_CORP_ID = 'wwdemo0000000001'
export const DEMO_APPID = 'wxdemo00000000001'

export interface ExampleServer {
  app: FastifyInstance
  /** The embedded WeCom stand-in, when no WeCom credentials were given. */
  sim?: WecomSimulator
}

/**
 * Builds the example from environment variables: WECOM_CORP_ID, WECOM_SECRET and JWT_SECRET talk
 * to the real WeCom; without them an embedded simulator plays WeCom. REDIS_URL puts sessions,
 * revocations and the WeCom token in Redis.
 */
export async function buildExampleServer (env: NodeJS.ProcessEnv, logger: boolean = true): Promise<ExampleServer> {
  const real = env.WECOM_CORP_ID !== undefined && env.WECOM_SECRET !== undefined && env.JWT_SECRET !== undefined
  const sim = real ? undefined : await createWecomSimulator({ corps: [demoCorp()] })
  const app = Fastify({ logger })
  app.addHook('onClose', async () => { await sim?.close() })

  const options: WecomAuthOptions = {
    corps: [{ corpId: env.WECOM_CORP_ID ?? DEMO_CORP_ID, secret: env.WECOM_SECRET ?? demoCorp().secret }],
    jwt: { secret: env.JWT_SECRET ?? randomBytes(32).toString('base64url') },
    miniprogramAppId: env.WECOM_MINIPROGRAM_APPID ?? (real ? undefined : DEMO_APPID),
    api: { baseUrl: sim?.url, proxy: env.WECOM_PROXY },
    store: { redis: env.REDIS_URL }
  }
  await app.register(fastifyWecomAuth, options)

  app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => ({ user: request.wecomUser }))
  app.post('/api/profile/mobile', { onRequest: app.wecom.authenticate }, async (request) => {
    const { mobile } = await app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string })
    return { mobile }
  })

  if (sim !== undefined) {
    // Stand-ins for what the mini program would do inside WeCom: wx.qy.login and wx.qy.getMobile.
    app.get<{ Querystring: { userid?: string } }>('/dev/code', async (request) =>
      sim.issueCode(DEMO_CORP_ID, request.query.userid ?? 'zhangsan'))
    app.get<{ Querystring: { userid?: string } }>('/dev/encrypted-mobile', async (request) => {
      const userid = request.query.userid ?? 'zhangsan'
      return sim.encryptUserInfo(DEMO_CORP_ID, userid, { mobile: '13800000000', countryCode: '86' }, DEMO_APPID)
    })
  }
  return { app, sim }
}

function demoCorp () {
  return {
    corpId: DEMO_CORP_ID,
    secret: 'demo-secret-not-a-real-one',
    members: [
      { userid: 'zhangsan', name: '张三', department: [1], position: 'engineer' },
      { userid: 'lisi', name: '李四', visible: false },
      { userid: 'wangwu', name: '王五', status: 2 }
    ]
  }
}

/** What `npm start` prints: commands to paste, in order. */
export function instructions (base: string): string {
  const json = 'node -pe "JSON.parse(require(\'fs\').readFileSync(0, \'utf8\')).access_token"'
  return [
    '',
    'WeCom simulator running: no WECOM_CORP_ID / WECOM_SECRET / JWT_SECRET in the environment.',
    'Members: zhangsan (allowed), lisi (outside the visible range), wangwu (disabled).',
    '',
    '# 1. get a code, as wx.qy.login would give the mini program',
    `CODE=$(curl -s '${base}/dev/code?userid=zhangsan')`,
    '# 2. log in with it',
    `TOKEN=$(curl -s -X POST ${base}/wecom/login -H 'content-type: application/json' -d "{\\"code\\":\\"$CODE\\"}" | ${json})`,
    '# 3. call a protected route',
    `curl -s ${base}/api/me -H "authorization: Bearer $TOKEN"`,
    '',
    '# try lisi or wangwu in step 1 to see a 403; call step 3 without the header to see a 401',
    ''
  ].join('\n')
}
