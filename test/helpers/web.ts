import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { request } from 'undici'
import type { WecomAuthOptions } from '../../src/index.js'
import type { WecomSimulator } from '../../src/testing/simulator.js'
import { KEY_A, TOKEN_A, callbackCorps } from './callback.js'
import { redisApp, type TestLike } from './redis.js'
import { CORP_A, WEB_A, WEB_HOST } from './setup.js'

// A browser's web login against the simulator's pages, for the tests of the browser surfaces.

/** `name=value` of each Set-Cookie of an answer, by name, and the attributes. */
export function cookiesOf (res: LightMyRequestResponse): Map<string, { value: string, attributes: string }> {
  const raw = res.headers['set-cookie']
  const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  return new Map(lines.map((line) => {
    const [pair, ...attributes] = line.split(';')
    const at = pair!.indexOf('=')
    return [pair!.slice(0, at), { value: pair!.slice(at + 1), attributes: attributes.join(';').trim() }]
  }))
}

/** WeCom's page, picking `who` (`userid=…` or `openid=…`): the callback URL it redirects to. */
export async function pick (location: string, who: string): Promise<URL> {
  const page = new URL(location)
  page.hash = ''
  const res = await request(`${page.href}&${who}`)
  await res.body.text()
  if (res.statusCode !== 302) throw new Error(`WeCom's page answered ${res.statusCode}`)
  return new URL(res.headers.location as string)
}

/** A GET of the app as a browser on WEB_HOST sends it, with `cookie` when given. */
export type BrowserGet = (url: string, cookie?: string, headers?: Record<string, string>) => Promise<LightMyRequestResponse>

/** `app`'s GET as a browser on WEB_HOST sends it. */
export function browserGet (app: FastifyInstance): BrowserGet {
  return (url, cookie, headers = {}) => app.inject({ url, headers: { host: WEB_HOST, ...(cookie === undefined ? {} : { cookie }), ...headers } })
}

/** A whole web login: /web/login, WeCom's page, /web/callback; the answers and the browser's cookies. */
export async function webLogin (h: { get: BrowserGet }, query: string, who = 'userid=zhangsan') {
  const start = await h.get(`/wecom/web/login?${query}`)
  const state = cookiesOf(start).get('wecom_state')
  const back = await pick(start.headers.location as string, who)
  const callback = await h.get(`${back.pathname}${back.search}`, state === undefined ? undefined : `wecom_state=${state.value}`)
  const cookies = cookiesOf(callback)
  const jar = ['wecom_access', 'wecom_refresh'].flatMap((name) => cookies.has(name) ? [`${name}=${cookies.get(name)!.value}`] : []).join('; ')
  return { start, back, callback, cookies, jar, stateCookie: state }
}

/**
 * Two instances on `store` (a Redis or Cluster), CORP_A with its web app and callback, zhangsan
 * logged in three ways: by the mini program on one, as a page inside WeCom on the other, and with
 * the PC browser on the first. The instances and each surface's access token.
 */
export async function threeSurfaces (t: TestLike, sim: WecomSimulator, store: WecomAuthOptions['store']) {
  const [corpA, ...others] = callbackCorps()
  const options = { corps: [{ ...corpA!, web: WEB_A }, ...others], web: { origins: [`http://${WEB_HOST}`], cookie: { secure: false } } }
  const a = await redisApp(t, sim, store, options)
  const b = await redisApp(t, sim, store, options)
  const address = await a.app.listen({ port: 0, host: '127.0.0.1' })
  await sim.setCallback(CORP_A, { url: `${address}/wecom/callback`, token: TOKEN_A, encodingAESKey: KEY_A })
  const tokens = {
    miniprogram: (await a.login('zhangsan')).json().access_token as string,
    h5: (await webLogin({ get: browserGet(b.app) }, 'via=oauth')).cookies.get('wecom_access')!.value,
    pc: (await webLogin({ get: browserGet(a.app) }, 'via=sso')).cookies.get('wecom_access')!.value
  }
  return { a, b, tokens }
}
