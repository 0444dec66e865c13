import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { InvalidArgumentError, InvalidCodeError, TokenMissingError } from './errors.js'
import { kByCookie, kClaims, type Authenticate } from './guard.js'
import { isPrintableAscii, MAX_CODE, MAX_CORP_ID } from './schemas.js'
import type { IssuedTokens, SessionSummary, Sessions } from './sessions/sessions.js'
import type { LoginContext, WecomProfile } from './member.js'
import type { AccessClaims } from './jwt.js'
import type { WecomApi } from './wecom/api.js'
import type { AuthorizedCorp } from './suites/options.js'
import { checkOrigin } from './web/csrf.js'

export interface WecomLoginOptions {
  /** The corp to exchange the code with; the first configured corp when absent. */
  corpId?: string
  /** The suite whose mini program gave the code (one of `suites`); the configured corps' when absent. */
  suiteId?: string
  /** Handed to `authorize`. */
  request?: FastifyRequest
}

/** What the plugin decorates the instance with, as `app.wecom`. */
export interface WecomAuthDecorator {
  /**
   * onRequest hook: refuses requests without a valid access token, sets `request.wecomUser`. The
   * token is the bearer header's, or with `web` and no Authorization header, the access cookie's;
   * by cookie, a request that may change something (any method but GET, HEAD, OPTIONS) passes
   * only from a page on `web.origins`, else 403 WECOM_CSRF.
   */
  authenticate: Authenticate
  /**
   * preHandler hook, after `authenticate`, for a host route that changes something on a safe
   * method (a GET with side effects): by cookie it passes only from a page on `web.origins`
   * (`Origin`, or without it `Sec-Fetch-Site: same-origin`), else 403 WECOM_CSRF; bearer requests
   * pass. Before `authenticate` (nothing verified yet) it refuses: 401 WECOM_TOKEN_MISSING.
   */
  csrfProtection: Authenticate
  /**
   * The login flow without the route: verifies a `wx.qy.login` code and starts a session. A code
   * that is not a string of 1 to 512 characters is refused as WECOM_INVALID_CODE without asking
   * WeCom; a corpId that is not a string of 1 to 64 characters as WECOM_INVALID_ARGUMENT.
   */
  login (code: string, options?: WecomLoginOptions): Promise<IssuedTokens>
  /**
   * Ends one session: its refresh token dies, its access tokens are refused everywhere. A sid that
   * is not a string of 1 to 256 characters rejects with WECOM_INVALID_ARGUMENT.
   */
  revokeSession (sid: string): Promise<void>
  /**
   * Off-boarding: ends every session of a member, forgets their session_key, and refuses every
   * access token of theirs issued before it, on every instance. Arguments that are not strings of
   * 1 to 256 characters reject with WECOM_INVALID_ARGUMENT.
   */
  revokeUser (corpId: string, userid: string): Promise<void>
  /**
   * Decrypts what wx.qy.getMobile / getEmail / getEnterpriseUserInfo returned, with the
   * session_key of the member `authenticate` verified on this request. Whatever `data` is, it
   * resolves or rejects with WECOM_DECRYPT_FAILED (or WECOM_TOKEN_MISSING without authenticate).
   */
  /**
   * The private fields (`{ userid, gender?, avatar?, qr_code?, mobile?, email?, biz_mail?, address? }`)
   * WeCom's auth/getuserdetail gave the web login of the session `authenticate` verified on this
   * request, when it asked `scope=snsapi_privateinfo` and the member granted it; null otherwise.
   * Sealed at rest; never in a token or a log line. Rejects with WECOM_TOKEN_MISSING without authenticate.
   */
  profile (request: FastifyRequest): Promise<WecomProfile | null>
  /**
   * A member's live sessions, whatever surface made them (mini program, page inside WeCom, PC
   * browser), oldest first: `{ sid, surface, created, refreshed, userAgent, current: false }`, times
   * in ISO 8601. For the host's admin pages; end one with `revokeSession(sid)`.
   */
  sessions (corpId: string, userid: string): Promise<SessionSummary[]>
  decrypt (request: FastifyRequest, data: unknown): Promise<Record<string, unknown>>
  /**
   * The app's other WeCom calls on the login's cached, shared access token (of `corpId`, or the
   * first corp), under the login's rules. A corpId not configured throws WECOM_CORP_UNKNOWN; one
   * that is not a string of 1 to 64 printable ASCII characters WECOM_INVALID_ARGUMENT.
   */
  api (corpId?: string): WecomApi
  /**
   * The raw WeCom access token of `corpId` (or the first corp), for the rare call `api()` cannot
   * make. A secret: never log it, never send it to a client. Rejects as `api()` calls do.
   */
  accessToken (corpId?: string): Promise<string>
  /**
   * The corps that installed one of `suites`, suite by suite (none without `suites`): ids as WeCom
   * wrote them, names, AgentIDs, and the install's time; never a permanent code.
   */
  corps (): Promise<AuthorizedCorp[]>
}

/** What `app.wecom` hands the host's calls to, once their arguments are checked. */
export interface DecoratorParts {
  authenticate: Authenticate
  /** `web.origins`, when browser sessions are on. */
  origins?: ReadonlySet<string>
  /** The login flow as the route runs it: one span and one outcome count per login. */
  login (code: string, context: LoginContext): Promise<IssuedTokens>
  sessions: Pick<Sessions, 'revokeSession' | 'revokeUser' | 'decrypt' | 'list' | 'profile'>
  wecomApi: { api (corpId?: string): WecomApi, accessToken (corpId?: string): Promise<string> }
  /** The service provider's installs, with `suites`. */
  provider?: { corps (): Promise<AuthorizedCorp[]> } | undefined
  log: FastifyBaseLogger
}

/**
 * `app.wecom`. The decorators take values from the host, often straight from a client: each is
 * checked here, so that a wrong type or size is a typed 4xx and never reaches WeCom or the store.
 */
export function createDecorator ({ authenticate, origins, login, sessions, wecomApi, provider, log }: DecoratorParts): WecomAuthDecorator {
  return {
    authenticate,
    csrfProtection (request, _reply, done) {
      try {
        // Before authenticate nothing says whether a cookie carried the token: a hook in the wrong
        // place would pass every request, so it refuses them all instead.
        if (request[kClaims] === null) throw new TokenMissingError()
        if (request[kByCookie]) checkOrigin(request, origins ?? NO_ORIGINS)
        done()
      } catch (error) {
        done(error as Error)
      }
    },
    async login (code, loginOptions) {
      if (!isPrintableAscii(code, MAX_CODE)) throw new InvalidCodeError()
      const { corpId, suiteId, request } = loginOptions ?? {}
      if (corpId !== undefined) corpIdArgument(corpId)
      if (suiteId !== undefined) corpIdArgument(suiteId, 'suiteId')
      return login(code, { corpId, suiteId, request, log })
    },
    async revokeSession (sid) {
      await sessions.revokeSession(argument('sid', sid))
    },
    async revokeUser (corpId, userid) {
      await sessions.revokeUser(argument('corpId', corpId), argument('userid', userid))
    },
    async profile (request) {
      return sessions.profile(verifiedClaims(request).sid)
    },
    async sessions (corpId, userid) {
      return sessions.list(corpIdArgument(corpId), argument('userid', userid))
    },
    async decrypt (request, data) {
      return sessions.decrypt(verifiedClaims(request), data)
    },
    api (corpId) {
      return wecomApi.api(corpId === undefined ? undefined : corpIdArgument(corpId))
    },
    async accessToken (corpId) {
      return wecomApi.accessToken(corpId === undefined ? undefined : corpIdArgument(corpId))
    },
    async corps () {
      return provider === undefined ? [] : await provider.corps()
    }
  }
}

/** The claims `authenticate` verified on `request`; WECOM_TOKEN_MISSING when it did not run (or the host passed no request). */
function verifiedClaims (request: FastifyRequest): AccessClaims {
  const claims = typeof request === 'object' && request !== null ? request[kClaims] : undefined
  if (claims === null || claims === undefined) throw new TokenMissingError()
  return claims
}

/** Without `web` no request is authenticated by cookie: never read, but never allocated per request either. */
const NO_ORIGINS: ReadonlySet<string> = new Set()

/** Far above any WeCom corpid, userid or our sid, far below a size that costs anything. */
const MAX_ARGUMENT = 256

function corpIdArgument (corpId: unknown, name = 'corpId'): string {
  if (!isPrintableAscii(corpId, MAX_CORP_ID)) {
    throw new InvalidArgumentError(name, `a string of 1 to ${MAX_CORP_ID} printable ASCII characters`)
  }
  return corpId
}

function argument (name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ARGUMENT) throw new InvalidArgumentError(name, `a string of 1 to ${MAX_ARGUMENT} characters`)
  return value
}
