import type { FastifyRequest } from 'fastify'
import { CsrfError } from '../errors.js'

/**
 * A request authenticated by a cookie that changes something passes only when the browser says
 * it comes from one of `origins`: its `Origin`, or without one, `Sec-Fetch-Site: same-origin`
 * (OWASP CSRF Prevention Cheat Sheet, "Verifying Origin With Standard Headers" and "Fetch
 * Metadata"). No token for the page to carry, which WeCom's webviews and @wecom/jssdk pages need.
 * Throws CsrfError (403 WECOM_CSRF) otherwise, before anything changed.
 */
export function checkOrigin (request: FastifyRequest, origins: ReadonlySet<string>): void {
  const origin = request.headers.origin
  // `Origin: null` (a sandboxed frame, a redirect from elsewhere) is an origin no page of the app
  // has: refused, whatever Sec-Fetch-Site says (OWASP: "null" is never to be trusted).
  if (typeof origin === 'string') {
    if (origins.has(origin)) return
    throw new CsrfError()
  }
  if (request.headers['sec-fetch-site'] === 'same-origin') return
  throw new CsrfError()
}
