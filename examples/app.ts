// A host app as a team would write it: its own routes, protected by the plugin. In a project of
// your own, import from 'fastify-wecom-auth' and 'fastify-wecom-auth/testing'; the example imports
// the sources so that `npm start` works on a fresh clone without a build.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyWecomAuth, { type WecomAuthOptions } from '../src/index.js'
import {
  createWecomSimulator,
  isAcknowledged,
  isSimulatorNotFound,
  type CallbackAnswer,
  type SimulatedCorp,
  type SimulatedDelivery,
  type SimulatedMember,
  type WecomSimulator
} from '../src/testing/simulator.js'
import { DEMO_CLIENT, DEMO_PROVIDER, DEMO_SUITE } from '../src/testing/demo.js'

export const DEMO_CORP_ID = 'wwdemo0000000001'
/** A second corp the mini program is associated with: its members' first login meets the 409. */
export const DEMO_CORP2_ID = 'wwdemo0000000002'
export const DEMO_APPID = 'wxdemo00000000001'
/** The demo corp's callback settings: in WeCom's admin console these are generated for you. */
export const DEMO_CALLBACK = { token: 'demoCallbackToken', encodingAESKey: 'ZGVtby1lbmNvZGluZy1hZXMta2V5LW5vdC1yZWFsISE' }
// The server as a service provider too (issue 19): its own CorpID, and a third-party app (a suite)
// that client corps install; the command-line simulator's demo provider, suite and client.
export { DEMO_SUITE }
const DEMO_PROVIDER_ID = DEMO_PROVIDER.corpId
/** A client corp of the provider: none of the server's own corps, its members log in only once it installs the suite. */
export const DEMO_CLIENT_CORP_ID = DEMO_CLIENT.corpId

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
  // The web app's pages are this server's: WeCom redirects only to its trusted domains.
  const port = env.PORT ?? '3000'
  const hosts = [`${env.HOST ?? '127.0.0.1'}:${port}`, `localhost:${port}`]
  // WeCom pushes a suite_ticket every ten minutes (each valid 30): a demo left running keeps working.
  const sim = real
    ? undefined
    : await createWecomSimulator({ corps: [...demoCorps(hosts), DEMO_CLIENT], provider: { corpId: DEMO_PROVIDER_ID }, suites: [DEMO_SUITE], suiteTicketEvery: 600 })
  const app = Fastify({ logger })
  app.addHook('onClose', async () => { await sim?.close() })

  const callback = real
    ? env.WECOM_CALLBACK_TOKEN !== undefined && env.WECOM_CALLBACK_AES_KEY !== undefined
      ? { token: env.WECOM_CALLBACK_TOKEN, encodingAESKey: env.WECOM_CALLBACK_AES_KEY }
      : undefined
    : DEMO_CALLBACK
  const options: WecomAuthOptions = {
    corps: real
      ? [{ corpId: env.WECOM_CORP_ID!, secret: env.WECOM_SECRET!, callback }]
      : demoCorps(hosts).map(({ corpId, secret, webApps: [web] = [] }) => ({ corpId, secret, callback, ...(web === undefined ? {} : { web: { agentId: web.agentId, secret: web.secret } }) })),
    jwt: { secret: env.JWT_SECRET ?? randomBytes(32).toString('base64url') },
    miniprogramAppId: env.WECOM_MINIPROGRAM_APPID ?? (real ? undefined : DEMO_APPID),
    api: { baseUrl: sim?.url, authorizeUrl: sim?.authorizeUrl, ssoUrl: sim?.ssoUrl, proxy: env.WECOM_PROXY },
    // Local http: a Secure cookie would not come back over it.
    web: real ? undefined : { origins: hosts.map((host) => `http://${host}`), cookie: { secure: false } },
    store: { redis: env.REDIS_URL },
    // The demo suite beside the corps; its permanent codes are sealed with a key of this process.
    ...(real ? {} : { provider: { corpId: DEMO_PROVIDER_ID }, suites: [DEMO_SUITE], sealKeys: [randomBytes(32).toString('base64url')] })
  }
  await app.register(fastifyWecomAuth, options)

  app.get('/api/me', { onRequest: app.wecom.authenticate }, async (request) => ({ user: request.wecomUser }))
  app.get('/api/profile', { onRequest: app.wecom.authenticate }, async (request) => ({ profile: await app.wecom.profile(request) }))
  app.post('/api/profile/mobile', { onRequest: app.wecom.authenticate }, async (request) => {
    const { mobile } = await app.wecom.decrypt(request, request.body as { encryptedData: string, iv: string })
    return { mobile }
  })

  // A context of their own, so that their error handler below does not reach the plugin's routes.
  if (sim !== undefined) await app.register(async (dev) => devRoutes(dev, sim))
  return { app, sim }
}

/** Query of every /dev route: which member of which demo corp (the first corp by default). */
const memberQuery = {
  type: 'object',
  properties: {
    corpid: { type: 'string', minLength: 1, maxLength: 64, default: DEMO_CORP_ID },
    userid: { type: 'string', minLength: 1, maxLength: 64, default: 'zhangsan' }
  },
  additionalProperties: false
} as const
interface MemberQuery { Querystring: { corpid: string, userid: string } }

/**
 * Stand-ins for what the mini program does inside WeCom (wx.qy.login, wx.qy.getMobile) and for
 * what an admin does in WeCom's console; the simulator then sends the event to /wecom/callback.
 */
function devRoutes (app: FastifyInstance, sim: WecomSimulator): void {
  // The simulator throws on a corp or member it does not have: the caller named one, so a 404.
  app.setErrorHandler((error, _request, reply) => {
    if (isSimulatorNotFound(error)) return reply.code(404).send({ message: error.message })
    return reply.send(error)
  })
  const schema = { querystring: memberQuery }
  app.get<MemberQuery>('/dev/code', { schema }, async (request) => sim.issueCode(request.query.corpid, request.query.userid))
  app.get<MemberQuery>('/dev/encrypted-mobile', { schema }, async (request) => {
    const { corpid, userid } = request.query
    return sim.encryptUserInfo(corpid, userid, { mobile: '13800000000', countryCode: '86' }, DEMO_APPID)
  })
  const admin = (action: (corpid: string, userid: string) => Promise<SimulatedDelivery | undefined>) =>
    async (request: FastifyRequest<MemberQuery>) => {
      const delivery = await action(request.query.corpid, request.query.userid)
      return { event: delivery?.event ?? null, acknowledged: delivery?.acknowledged ?? false }
    }
  app.post<MemberQuery>('/dev/remove', { schema }, admin((corpid, userid) => sim.removeMember(corpid, userid)))
  app.post<MemberQuery>('/dev/disable', { schema }, admin((corpid, userid) => sim.disableMember(corpid, userid)))
  // Undoes a removal or a change: the demo member as it started, so that a demo runs again.
  app.post<MemberQuery>('/dev/restore', { schema }, async (request, reply) => {
    const { corpid, userid } = request.query
    const member = DEMO_CORPS.find(({ corpId }) => corpId === corpid)?.members?.find((demo) => demo.userid === userid)
    if (member === undefined) return reply.code(404).send({ message: `${userid} is not a demo member of ${corpid}` })
    sim.setMember(corpid, member)
    return { restored: member }
  })

  // The playground: the mini program and the admin console in a page, against this simulator.
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PLAYGROUND))
  // The browser surfaces: a page inside WeCom and the PC browser, signed in by cookies.
  app.get('/web', async (_request, reply) => reply.type('text/html; charset=utf-8').send(WEB_PAGE))
  // The simulator's directory as it is now; a demo member removed is listed too, to be restored.
  app.get('/dev/members', async () => DEMO_CORPS.map(({ corpId, members: demo = [] }) => {
    const now = new Map(sim.members(corpId).map((member) => [member.userid, member]))
    const userids = new Set([...demo.map(({ userid }) => userid), ...now.keys()])
    return { corpId, members: [...userids].map((userid) => ({ userid, note: noteOf(now.get(userid)) })) }
  }))
  // What each step caused at WeCom, from the simulator's log: no query, for it holds the secret and tokens.
  app.get<{ Querystring: { after: number } }>('/dev/wecom-calls', {
    schema: { querystring: { type: 'object', properties: { after: { type: 'integer', minimum: 0, default: 0 } } } }
  }, async (request) => sim.requests
    .filter(({ id }) => id > request.query.after)
    .map(({ id, endpoint, errcode, ms }) => ({ id, endpoint, errcode, ms })))
  providerRoutes(app, sim)
}

/** Query of the provider's /dev routes: the corp that installs or uninstalls the demo suite, the client corp by default. */
const corpQuery = {
  type: 'object',
  properties: { corpid: { type: 'string', minLength: 1, maxLength: 64, default: DEMO_CLIENT_CORP_ID } },
  additionalProperties: false
} as const
interface CorpQuery { Querystring: { corpid: string } }

/**
 * What a client corp's admin does to the provider's app in WeCom, the simulator then pushing
 * create_auth or cancel_auth to /wecom/suite/callback; and the installs as app.wecom.corps()
 * lists them, for the playground. No answer carries a permanent code, ticket or token.
 */
function providerRoutes (app: FastifyInstance, sim: WecomSimulator): void {
  const installs = async () => (await app.wecom.corps()).map(({ suiteId, corpId, authorizedAt }) => ({ suiteId, corpId, authorizedAt: new Date(authorizedAt).toISOString() }))
  app.get('/dev/provider', async () => ({ suiteId: DEMO_SUITE.suiteId, corpId: DEMO_CLIENT_CORP_ID, userid: DEMO_CLIENT.members![0]!.userid, installs: await installs() }))
  const admin = (pushed: string, action: (corpid: string) => Promise<CallbackAnswer | undefined>) =>
    async (request: FastifyRequest<CorpQuery>) => {
      const answer = await action(request.query.corpid)
      return { pushed, acknowledged: isAcknowledged(answer), installs: await installs() }
    }
  const schema = { querystring: corpQuery }
  app.post<CorpQuery>('/dev/install', { schema }, admin('create_auth', (corpid) => sim.install(corpid)))
  app.post<CorpQuery>('/dev/uninstall', { schema }, admin('cancel_auth', (corpid) => sim.uninstall(corpid)))
}

/** How the playground labels a member: absent from the directory, out of range, disabled, or fine. */
function noteOf (member: SimulatedMember | undefined): string | undefined {
  if (member === undefined) return 'removed'
  if (member.visible === false) return 'outside the visible range'
  return member.status === 2 ? 'disabled' : undefined
}

const PLAYGROUND = readFileSync(new URL('playground.html', import.meta.url), 'utf8')
const WEB_PAGE = readFileSync(new URL('web.html', import.meta.url), 'utf8')

/**
 * Saves the listening address as each demo corp's callback URL, as an admin saves it in the
 * console, and as the demo suite's command callback URL, as the provider saves it in its own
 * (WeCom checks each); the suite's timed suite_ticket pushes start.
 */
export async function connectSimulator (sim: WecomSimulator, address: string): Promise<void> {
  for (const { corpId } of DEMO_CORPS) await sim.setCallback(corpId, { url: `${address}/wecom/callback`, ...DEMO_CALLBACK })
  await sim.connectSuites(`${address}/wecom/suite/callback`)
  // The first timed push is under way, not awaited: this one is, so that an install at once finds a ticket.
  await sim.pushSuiteTicket(DEMO_SUITE.suiteId)
}

/** The demo corps; the first has a self-built app whose pages live on `hosts` (its trusted domains). */
function demoCorps (hosts: string[]): SimulatedCorp[] {
  return [
    {
      corpId: DEMO_CORP_ID,
      secret: 'demo-secret-not-a-real-one',
      webApps: [{ agentId: 1000005, secret: 'demo-web-secret-not-a-real-one', trustedDomains: hosts }],
      members: [
        { userid: 'zhangsan', name: '张三', department: [1], position: 'engineer', mobile: '13800000000', email: 'zhangsan@demo.test' },
        { userid: 'lisi', name: '李四', visible: false },
        { userid: 'wangwu', name: '王五', status: 2 }
      ]
    },
    { corpId: DEMO_CORP2_ID, secret: 'demo-secret-2-not-a-real-one', members: [{ userid: 'zhaoliu', name: '赵六' }] }
  ]
}
/** The demo corps' members as they start, whatever the hosts: for /dev/restore and /dev/members. */
const DEMO_CORPS = demoCorps([])

/** What `npm start` prints: commands to paste, in order. */
export function instructions (base: string): string {
  const json = 'node -pe "JSON.parse(require(\'fs\').readFileSync(0, \'utf8\')).access_token"'
  return [
    '',
    'WeCom simulator running: no WECOM_CORP_ID / WECOM_SECRET / JWT_SECRET in the environment.',
    `Playground: open ${base}/ in a browser to play the mini program and the admin console,`,
    `and a service provider's app that ${DEMO_CLIENT_CORP_ID} installs, logs in through and uninstalls.`,
    '',
    'Or with curl:',
    `Members of ${DEMO_CORP_ID}: zhangsan (allowed), lisi (outside the visible range), wangwu (disabled);`,
    `of ${DEMO_CORP2_ID}: zhaoliu (a second corp: add &corpid=${DEMO_CORP2_ID} to /dev/code, and "corpId":"${DEMO_CORP2_ID}" to the login body).`,
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
    '# 5. put zhangsan back in "WeCom", so that these commands run again from step 1',
    `curl -s -X POST '${base}/dev/restore?userid=zhangsan'`,
    '',
    '# try lisi or wangwu in step 1 to see a 403; call step 3 without the header to see a 401',
    ''
  ].join('\n')
}
