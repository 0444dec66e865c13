// A host app as a team would write it: its own routes, protected by the plugin. In a project of
// your own, import from 'fastify-wecom-auth' and 'fastify-wecom-auth/testing'; the example imports
// the sources so that `npm start` works on a fresh clone without a build.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWecomAuth, { type WecomAuthOptions } from '../src/index.js'
import { createWecomSimulator, type WecomSimulator } from '../src/testing/simulator.js'

export const DEMO_CORP_ID = 'wwdemo0000000001'
export const DEMO_APPID = 'wxdemo00000000001'
/** The demo corp's callback settings: in WeCom's admin console these are generated for you. */
export const DEMO_CALLBACK = { token: 'demoCallbackToken', encodingAESKey: 'ZGVtby1lbmNvZGluZy1hZXMta2V5LW5vdC1yZWFsISE' }

export interface ExampleServer {
  app: FastifyInstance
  /** The embedded WeCom stand-in, when no WeCom credentials were given. */
  sim?: WecomSimulator
}

/**
 * Builds the example from environment variables: WECOM_CORP_ID, WECOM_SECRET and JWT_SECRET talk
 * to the real WeCom (with WECOM_CALLBACK_TOKEN and WECOM_CALLBACK_AES_KEY, its events end
 * sessions at {prefix}/callback); without them an embedded simulator plays WeCom, callbacks
 * included once `connectSimulator` saved the address. REDIS_URL puts sessions, revocations and
 * the WeCom token in Redis.
 */
export async function buildExampleServer (env: NodeJS.ProcessEnv, logger: boolean = true): Promise<ExampleServer> {
  const real = env.WECOM_CORP_ID !== undefined && env.WECOM_SECRET !== undefined && env.JWT_SECRET !== undefined
  const sim = real ? undefined : await createWecomSimulator({ corps: [demoCorp()] })
  const app = Fastify({ logger })
  app.addHook('onClose', async () => { await sim?.close() })

  const callback = real
    ? env.WECOM_CALLBACK_TOKEN !== undefined && env.WECOM_CALLBACK_AES_KEY !== undefined
      ? { token: env.WECOM_CALLBACK_TOKEN, encodingAESKey: env.WECOM_CALLBACK_AES_KEY }
      : undefined
    : DEMO_CALLBACK
  const options: WecomAuthOptions = {
    corps: [{ corpId: env.WECOM_CORP_ID ?? DEMO_CORP_ID, secret: env.WECOM_SECRET ?? demoCorp().secret, callback }],
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
    // What an admin does in WeCom's console; the simulator then sends the event to /wecom/callback.
    app.post<{ Querystring: { userid?: string } }>('/dev/remove', async (request) => {
      const delivery = await sim.removeMember(DEMO_CORP_ID, request.query.userid ?? 'zhangsan')
      return { event: delivery?.event ?? null, acknowledged: delivery?.acknowledged ?? false }
    })
  }
  return { app, sim }
}

/** Saves the listening address as the demo corp's callback URL, as an admin saves it in the console (WeCom checks it). */
export async function connectSimulator (sim: WecomSimulator, address: string): Promise<void> {
  await sim.setCallback(DEMO_CORP_ID, { url: `${address}/wecom/callback`, ...DEMO_CALLBACK })
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
    '# 4. delete zhangsan in "WeCom": its event reaches /wecom/callback and the session dies',
    `curl -s -X POST '${base}/dev/remove?userid=zhangsan'`,
    `curl -s ${base}/api/me -H "authorization: Bearer $TOKEN"   # 401 WECOM_TOKEN_REVOKED`,
    '',
    '# try lisi or wangwu in step 1 to see a 403; call step 3 without the header to see a 401',
    ''
  ].join('\n')
}
