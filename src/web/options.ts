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

/** An origin as browsers send it in `Origin`: scheme, host and port only. */
const origin = z.url({ error: 'must be an origin such as https://app.example.com', protocol: /^https?$/ })
  .refine((value) => new URL(value).origin === value.replace(/\/$/, ''), { error: 'must be an origin only (scheme, host, port), without a path' })
  .transform((value) => new URL(value).origin)

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
    domain: z.string(required('a domain')).min(1, { error: 'must not be empty' }).optional(),
    // false only for local http: browsers drop Secure cookies sent over http.
    secure: z.boolean(required('true or false')).default(true)
  }, strict()).prefault({})
}, strict())

/** `api.authorizeUrl`: WeCom's OAuth2 page, or the simulator's. */
export const authorizeUrl = z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).default('https://open.weixin.qq.com/connect/oauth2/authorize')
/** `api.ssoUrl`: WeCom's PC login page, or the simulator's. */
export const ssoUrl = z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).default('https://login.work.weixin.qq.com/wwlogin/sso/login')

export type WebOptions = z.output<typeof webOptions>
export type WebApp = z.output<typeof webApp>
