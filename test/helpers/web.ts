import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { request } from 'undici'
import { WEB_HOST } from './setup.js'

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
