import { fastifyCookie } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IssuedTokens } from '../sessions/sessions.js'
import { STATE_TTL } from './state.js'
import type { WebOptions } from './options.js'

/** The cookie routes' paths under the plugin's prefix: where each cookie is sent, and no further. */
export interface CookiePaths {
  /** `{prefix}/web/callback`: the state cookie's only reader. */
  callback: string
  /** `{prefix}/refresh`: the refresh cookie's only reader. */
  refresh: string
}

/**
 * @fastify/cookie's serialize, without registering the plugin: its onRequest hook would parse
 * cookies on every request of the plugin's routes for the few that read one (the JS-SDK route
 * measured 0.8× a trivial authenticated route with it). Fastify keeps each Set-Cookie apart.
 */
function setCookie (reply: FastifyReply, name: string, value: string, options: Parameters<typeof fastifyCookie.serialize>[2]): void {
  reply.header('set-cookie', fastifyCookie.serialize(name, value, options))
}

/** A cookie of the request: from request.cookies when the host registered @fastify/cookie, else read here. */
export function cookieValue (request: FastifyRequest, name: string): string | undefined {
  const parsed = (request as { cookies?: Record<string, string | undefined> }).cookies
  if (parsed !== undefined) return parsed[name] || undefined
  const header = request.headers.cookie
  return header === undefined ? undefined : fastifyCookie.parse(header)[name] || undefined
}

/**
 * The session and state cookies (RFC 6265bis): HttpOnly, so that no page script reads a token;
 * Secure unless `web.cookie.secure` is false (local http); SameSite=Lax, so that a cross-site
 * POST carries none while a link into the app still logs in. Each cookie's Path is the one
 * route that reads it, beside the access cookie's `/`, which the host's routes read.
 */
export function createCookies ({ cookie }: WebOptions, paths: CookiePaths) {
  // Never signed, whatever a host's @fastify/cookie does: these values carry their own proof.
  // Spread last in each cookie's options: a property after a spread is V8's slow path (CONTRIBUTING.md, House rules).
  const base = { httpOnly: true, secure: cookie.secure, sameSite: 'lax' as const, ...(cookie.domain === undefined ? {} : { domain: cookie.domain }) }
  return {
    names: { access: cookie.access, refresh: cookie.refresh, state: cookie.state },
    /** The session's two tokens, each living as long as it does. */
    session (reply: FastifyReply, issued: IssuedTokens): void {
      setCookie(reply, cookie.access, issued.access_token, { path: '/', maxAge: issued.expires_in, ...base })
      if (issued.refresh_token !== undefined) {
        setCookie(reply, cookie.refresh, issued.refresh_token, { path: paths.refresh, maxAge: issued.refresh_expires_in, ...base })
      }
    },
    /** Both session cookies gone (logout, a refused refresh). */
    clearSession (reply: FastifyReply): void {
      setCookie(reply, cookie.access, '', { path: '/', maxAge: 0, ...base })
      setCookie(reply, cookie.refresh, '', { path: paths.refresh, maxAge: 0, ...base })
    },
    /** A login's state cookie, for the callback only, as long as the login may take. */
    state (reply: FastifyReply, value: string): void {
      setCookie(reply, cookie.state, value, { path: paths.callback, maxAge: STATE_TTL / 1000, ...base })
    },
    clearState (reply: FastifyReply): void {
      setCookie(reply, cookie.state, '', { path: paths.callback, maxAge: 0, ...base })
    }
  }
}

export type Cookies = ReturnType<typeof createCookies>
