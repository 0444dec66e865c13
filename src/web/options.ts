import { z } from 'zod'
import { required, strict } from '../option-issues.js'

// The options of the browser surfaces (issue 18), beside src/options.ts, which composes them.

/** WeCom's agentid of a self-built app (自建应用): a positive integer, given as a number or digits. */
const agentId = z.union([
  z.number().int().positive(),
  z.string().regex(/^[1-9][0-9]{0,9}$/).transform(Number)
], { error: 'must be WeCom\'s agentid, a positive whole number' })

/**
 * `corps[].web`: the self-built app whose pages these are, with its own secret (so its own access
 * token, and its own visible range) beside the mini program's.
 */
export const webApp = z.strictObject({
  agentId,
  secret: z.string(required('a non-empty string')).min(1, { error: 'must not be empty' })
}, strict())

function parsed (value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** What is wrong with `value` as an origin (scheme, host and port only; one host, no wildcard); undefined when nothing. */
function originProblem (value: string): string | undefined {
  const url = parsed(value)
  if (url === undefined || !/^https?:$/.test(url.protocol) || url.host === '') return 'must be an origin such as https://app.example.com'
  if (url.host.includes('*')) return 'must name one host: a wildcard matches no Origin a browser sends'
  const path = value.replace(/^[a-z]+:\/\//i, '')
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || /\/./.test(path)) {
    return 'must be an origin only (scheme, host, port), without a path'
  }
  return undefined
}

/** An origin as browsers send it in `Origin`. */
const origin = z.string(required('an origin such as https://app.example.com')).superRefine((value, ctx) => {
  const problem = originProblem(value)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
}).transform((value) => new URL(value).origin)

/** A cookie name (RFC 6265 §4.1.1: a token). */
const cookieName = (fallback: string) => z.string(required('a cookie name'))
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'must be a cookie name (RFC 6265 token characters)' }).default(fallback)

/**
 * `web`: where the browser pages live (CSRF checks, the URLs the JS-SDK may sign), where a login
 * may return to, and the cookies' names and attributes.
 */
export const webOptions = z.strictObject({
  origins: z.array(origin, required('an array of origins')).min(1, { error: 'must list at least one origin' }),
  // Same-origin paths are always allowed; an absolute URL only when listed here, exactly.
  redirects: z.array(z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }), required('an array of URLs')).default([]),
  cookie: z.strictObject({
    access: cookieName('wecom_access'),
    refresh: cookieName('wecom_refresh'),
    state: cookieName('wecom_state'),
    domain: z.string(required('a domain')).regex(/^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, { error: 'must be a domain name such as example.com' }).optional(),
    // false only for local http: browsers drop Secure cookies sent over http.
    secure: z.boolean(required('true or false')).default(true)
  }, strict()).prefault({}).superRefine((cookie, ctx) => {
    const names = [cookie.access, cookie.refresh, cookie.state]
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', message: `names must differ (access ${cookie.access}, refresh ${cookie.refresh}, state ${cookie.state})` })
    // Cookie prefixes (RFC 6265bis §4.1.3): a browser drops a cookie that breaks its prefix's rule,
    // and the login or refresh would then fail with no word of why.
    for (const [which, name] of [['access', cookie.access], ['refresh', cookie.refresh], ['state', cookie.state]] as const) {
      const broken = prefixProblem(name, which, cookie)
      if (broken !== undefined) ctx.addIssue({ code: 'custom', path: [which], message: broken })
    }
  })
}, strict())

/** Which rule of its prefix (`__Host-`, `__Secure-`) the cookie `name` would break, said in full; undefined for none. */
function prefixProblem (name: string, which: 'access' | 'refresh' | 'state', cookie: { secure: boolean, domain?: string | undefined }): string | undefined {
  const prefix = ['__Host-', '__Secure-'].find((one) => name.startsWith(one))
  if (prefix === undefined) return undefined
  const rule = (broken: string): string => `${name}: the ${prefix} prefix ${broken}`
  if (!cookie.secure) return rule('needs secure: true')
  if (prefix === '__Host-' && cookie.domain !== undefined) return rule('allows no domain')
  if (prefix === '__Host-' && which !== 'access') return rule(`needs Path=/, and the ${which} cookie is sent to its route only`)
  return undefined
}

/** A page's URL the plugin adds its own query to: no query or fragment of its own. */
const pageUrl = (fallback: string) => z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ })
  .refine((value) => parsed(value)?.search === '' && parsed(value)?.hash === '' && !value.includes('#'), { error: 'must have no query or fragment: the plugin adds its own' })
  .default(fallback)
/** `api.authorizeUrl`: WeCom's OAuth2 page, or the simulator's. */
export const authorizeUrl = pageUrl('https://open.weixin.qq.com/connect/oauth2/authorize')
/** `api.ssoUrl`: WeCom's PC login page, or the simulator's. */
export const ssoUrl = pageUrl('https://login.work.weixin.qq.com/wwlogin/sso/login')

export type WebOptions = z.output<typeof webOptions>
export type WebApp = z.output<typeof webApp>
