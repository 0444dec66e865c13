import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { StateInvalidError } from '../errors.js'
import type { OAuthScope } from '../surfaces/oauth.js'

/** Milliseconds a web login may take from the redirect to WeCom to the callback: a code's life (5 min). */
export const STATE_TTL = 5 * 60 * 1000

/** `oauth`: the authorize page inside WeCom; `sso`: the PC login page. */
export type WebVia = 'oauth' | 'sso'

/** What a web login started with, carried by its state cookie back to the callback. */
export interface LoginState {
  /** The corp whose app the login is for; '' for a third-party suite's, whose corp WeCom tells at the callback. */
  corpId: string
  /** A suite's login: a third-party suite's pages, or a 代开发 suite's app in `corpId`. */
  suiteId?: string
  /** Where the callback sends the browser: a same-origin path or a listed URL. */
  redirect: string
  scope: OAuthScope
  via: WebVia
}

export interface LoginStates {
  /**
   * A new login's `state` (for WeCom's URL, 32 base64url characters) and the cookie value that
   * binds it to this browser: the state and `login`, with their time, under an HMAC.
   */
  issue (login: LoginState): { state: string, cookie: string }
  /**
   * The login of `state` when `cookie` (this browser's state cookie) is the one issued with it,
   * within STATE_TTL, and the state was not used before on any instance sharing the store (`claim`
   * is the store's, so Redis makes it cluster-wide). Throws StateInvalidError otherwise;
   * a store outage rejects as the store does.
   */
  consume (state: string | undefined, cookie: string | undefined): Promise<LoginState>
}

interface Sealed extends LoginState { state: string, at: number }

/**
 * Login CSRF (RFC 6749 §10.12): a code is only taken with the state this browser was given. The
 * cookie is HttpOnly, so a page cannot read it; a state from another browser, or sent twice
 * (even with a fresh code from WeCom), or older than STATE_TTL, is refused.
 */
export function createLoginStates (key: Buffer, claim: (key: string, ttl: number) => Promise<boolean>, now: () => number = Date.now): LoginStates {
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest()
  return {
    issue (login) {
      const state = randomBytes(24).toString('base64url')
      const sealed: Sealed = Object.assign({}, login, { state, at: now() })
      const payload = Buffer.from(JSON.stringify(sealed)).toString('base64url')
      return { state, cookie: `${payload}.${mac(payload).toString('base64url')}` }
    },
    async consume (state, cookie) {
      const sealed = open(cookie, mac)
      if (sealed === undefined || typeof state !== 'string' || sealed.state !== state) throw new StateInvalidError()
      const age = now() - sealed.at
      if (age < 0 || age > STATE_TTL) throw new StateInvalidError()
      // Single use: the first to claim it wins, on whichever instance.
      if (!await claim(`web-state:${state}`, STATE_TTL)) throw new StateInvalidError()
      return { corpId: sealed.corpId, suiteId: sealed.suiteId, redirect: sealed.redirect, scope: sealed.scope, via: sealed.via }
    }
  }
}

function open (cookie: string | undefined, mac: (payload: string) => Buffer): Sealed | undefined {
  if (typeof cookie !== 'string') return undefined
  const [payload, tag, ...rest] = cookie.split('.')
  if (payload === undefined || tag === undefined || rest.length > 0) return undefined
  const expected = mac(payload)
  const given = Buffer.from(tag, 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    const sealed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Sealed
    return typeof sealed.state === 'string' && typeof sealed.at === 'number' && typeof sealed.corpId === 'string' ? sealed : undefined
  } catch {
    return undefined
  }
}
