import { STATUS_CODES } from 'node:http'
import {
  CallbackForbiddenError, CsrfError, CallbackInvalidError, CallbackRetryError, CorpMismatchError, CorpNotAllowedError, CorpUnknownError,
  InvalidArgumentError, InvalidCodeError, RateLimitedError, RedirectInvalidError, RefreshInvalidError, StateInvalidError, StoreUnavailableError,
  TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError, UnavailableError, UpstreamError, UserForbiddenError,
  SuiteUnknownError, UrlNotAllowedError, WebNotConfiguredError
} from './errors.js'

// The JSON Schema of the plugin's routes: what validates their bodies (with the plugin's own ajv)
// and what @fastify/swagger documents, one source for both. Plain JSON Schema that OpenAPI 3.0
// also reads as is (no type arrays: `nullable`), so that any host's @fastify/swagger takes it.

/** How the routes appear in the host's OpenAPI document. */
export interface DocsOptions {
  /** The tag of every route of the plugin. */
  tag: string
  /** Leaves the routes out of the document. */
  hide: boolean
}

/** The security scheme logout names, added to the document's components when it has none by that name. */
export const SECURITY_SCHEME = 'wecomBearer'

/**
 * Printable ASCII, bounded in characters, which for ASCII are UTF-16 units and bytes alike:
 * codes and corpIds are ASCII, and a bound counted otherwise would let 512 emoji (2 KiB of query
 * string) through to WeCom.
 */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/
const ascii = (maxLength: number, description: string) =>
  ({ type: 'string', minLength: 1, maxLength, pattern: PRINTABLE_ASCII.source, description })

/** The longest code and corpId /login takes; `app.wecom.login()` and `api()` check the same. */
export const MAX_CODE = 512
export const MAX_CORP_ID = 64

/** The same test as the schemas' `ascii`, for a value that does not come through a route. */
export function isPrintableAscii (value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= maxLength && PRINTABLE_ASCII.test(value)
}
const refreshToken = { type: 'string', minLength: 1, maxLength: 256, description: 'The refresh token of the session' }

const loginBody = {
  type: 'object',
  required: ['code'],
  properties: {
    code: ascii(MAX_CODE, 'The code wx.qy.login gave the mini program'),
    corpId: ascii(MAX_CORP_ID, 'The corp to exchange the code with; the first configured corp when absent'),
    suiteId: ascii(MAX_CORP_ID, 'The suite whose mini program gave the code; the configured corps\' when absent')
  }
}
const refreshBody = { type: 'object', required: ['refresh_token'], properties: { refresh_token: refreshToken } }
/**
 * No body, an empty one (`null`), or the refresh token: logout is also by the bearer token alone.
 * Logout is idempotent (RFC 7009 §2.2): a token that cannot be one of ours ends nothing and is
 * answered 204 like any other unknown token, not 400; the bound only stops an absurd body.
 */
export const logoutBody = {
  type: 'object',
  nullable: true,
  properties: { refresh_token: { type: 'string', maxLength: 4096, description: 'The refresh token of the session' } }
}

const member = {
  type: 'object',
  required: ['userid', 'corpid'],
  properties: {
    userid: { type: 'string' },
    corpid: { type: 'string' },
    name: { type: 'string' },
    department: { type: 'array', items: { type: 'integer' } },
    position: { type: 'string' }
  }
}
const issuedTokens = {
  type: 'object',
  description: 'A session: its access token for `Authorization: Bearer`, and the refresh token that renews it',
  required: ['access_token', 'token_type', 'expires_in', 'user'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer', description: 'Seconds the access token lives' },
    refresh_token: { type: 'string', description: 'Absent while the session store is unavailable' },
    refresh_expires_in: { type: 'integer' },
    user: member
  }
}

const sessionSummary = {
  type: 'object',
  required: ['sid', 'surface', 'created', 'refreshed', 'userAgent', 'current'],
  properties: {
    sid: { type: 'string' },
    surface: { type: 'string', enum: ['miniprogram', 'h5', 'web'] },
    created: { type: 'string', format: 'date-time' },
    refreshed: { type: 'string', format: 'date-time', nullable: true },
    userAgent: { type: 'string', nullable: true },
    current: { type: 'boolean' }
  }
}

const pageSignature = {
  type: 'object',
  required: ['timestamp', 'nonceStr', 'signature'],
  properties: { timestamp: { type: 'integer', description: 'Seconds since the epoch' }, nonceStr: { type: 'string' }, signature: { type: 'string', description: '40 hex digits (sha1)' } }
}

function webLoginQuery (withVia: boolean): object {
  const properties: Record<string, object> = {
    corpId: ascii(MAX_CORP_ID, 'The corp; the first with a web app when absent; with a 代开发 suite, the corp that installed it'),
    suiteId: ascii(MAX_CORP_ID, 'A suite\'s pages rather than a corp\'s web app: a third-party suite\'s (login_type=ServiceApp), or a 代开发 suite\'s in `corpId`'),
    redirect: { type: 'string', minLength: 1, maxLength: 2048, description: 'Where to return: a path of this site, or a URL listed in web.redirects' }
  }
  if (withVia) {
    properties.scope = { type: 'string', enum: ['snsapi_base', 'snsapi_privateinfo'], description: 'WeCom\'s OAuth2 scope' }
    properties.via = { type: 'string', enum: ['oauth', 'sso'], description: 'oauth inside WeCom, sso in a PC browser; by the User-Agent when absent' }
  }
  return { type: 'object', properties }
}

type ErrorClass = new (...args: never[]) => Error & { code: string, statusCode?: number }

/**
 * The error answers of a route, by status: Fastify's `{ statusCode, code, error, message }` with
 * the codes that status can carry (the 409 also names the corp the code belongs to).
 */
function errorResponses (errors: readonly ErrorClass[], fastifyCodes: Record<number, readonly string[]> = {}): Record<number, object> {
  const codes = new Map<number, string[]>()
  for (const [status, list] of Object.entries(fastifyCodes)) codes.set(Number(status), [...list])
  for (const ErrorClass of errors) {
    // @fastify/error sets code and status on each instance: one, with no message arguments, tells them.
    const { code, statusCode = 500 } = Reflect.construct(ErrorClass, []) as InstanceType<ErrorClass>
    codes.set(statusCode, [...codes.get(statusCode) ?? [], code])
  }
  const responses: Record<number, object> = {}
  for (const [status, list] of [...codes].sort(([a], [b]) => a - b)) {
    const properties: Record<string, object> = {
      statusCode: { type: 'integer', enum: [status] },
      code: { type: 'string', enum: list },
      error: { type: 'string', enum: [STATUS_CODES[status]] },
      message: { type: 'string' }
    }
    if (status === 409) properties.corpId = { type: 'string', description: 'The corp the code belongs to: retry with it' }
    responses[status] = { description: STATUS_CODES[status], type: 'object', required: ['statusCode', 'code', 'error', 'message'], properties }
  }
  return responses
}

/** What Fastify itself answers before the handler: a body that is not JSON, or fails its schema. */
const BAD_BODY = { 400: ['FST_ERR_VALIDATION', 'FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY'] }
/** A web login's start: an unknown corp or suite, a corp without a web app or install, a redirect not allowed; a 代开发 install read from the store. */
const WEB_BEGIN: readonly ErrorClass[] = [CorpUnknownError, SuiteUnknownError, WebNotConfiguredError, RedirectInvalidError, CorpNotAllowedError, StoreUnavailableError]
/** A login's or refresh's exchange with WeCom and the store. */
const EXCHANGE: readonly ErrorClass[] = [CorpNotAllowedError, UserForbiddenError, RateLimitedError, UpstreamError, UnavailableError, StoreUnavailableError]

/** The `schema` of each route: validation and documentation. */
export function routeSchemas ({ tag, hide }: DocsOptions, cookies = false) {
  const common = { tags: [tag], ...(hide ? { hide: true } : {}) }
  return { ...coreSchemas(common, cookies), ...browserSchemas(common), ...sessionSchemas(common) }
}

type Common = { tags: string[], hide?: boolean }

/** The mini program's routes, the JWKS and the callback. */
function coreSchemas (common: Common, cookies: boolean) {
  return {
    login: {
      ...common,
      summary: 'Log in with a wx.qy.login code',
      description: 'Verifies the code with WeCom (code → member → still allowed) and starts a session.',
      body: loginBody,
      response: { 200: issuedTokens, ...errorResponses([CorpUnknownError, SuiteUnknownError, InvalidArgumentError, InvalidCodeError, CorpMismatchError, ...EXCHANGE], BAD_BODY) }
    },
    refresh: {
      ...common,
      summary: 'Renew a session',
      description: 'Rotates the refresh token: the one presented is used up, the answer carries the next.' +
        (cookies ? ' Without a body, the refresh cookie is used and the new tokens are set as cookies (204).' : ''),
      // With cookies the body may be absent; OpenAPI 3.0 takes no empty `required`.
      body: cookies ? { type: 'object', nullable: true, properties: refreshBody.properties } : refreshBody,
      response: {
        200: issuedTokens,
        ...(cookies ? { 204: { description: 'The session cookies were renewed', type: 'null' } } : {}),
        ...errorResponses([RefreshInvalidError, ...EXCHANGE, ...(cookies ? [CsrfError] : [])], BAD_BODY)
      }
    },
    logout: {
      ...common,
      summary: 'End a session',
      description: 'By its refresh token in the body, or by its access token (`Authorization: Bearer`) with no body. ' +
        'The same 204 whether the refresh token named a live session or not (RFC 7009).',
      body: logoutBody,
      // Either the bearer token or none (the refresh token in the body).
      security: [{ [SECURITY_SCHEME]: [] }, {}] as Array<Record<string, string[]>>,
      response: {
        204: { description: 'The session has ended', type: 'null' },
        ...errorResponses([TokenMissingError, TokenInvalidError, TokenExpiredError, TokenRevokedError, StoreUnavailableError], BAD_BODY)
      }
    },
    jwks: {
      ...common,
      summary: 'The public keys of the access tokens (JWKS)',
      description: 'RFC 7517: the asymmetric keys of `jwt.keys`, for services that verify the access tokens without a secret.',
      response: {
        200: {
          description: 'A JSON Web Key Set',
          type: 'object',
          required: ['keys'],
          properties: {
            keys: {
              type: 'array',
              items: {
                type: 'object',
                required: ['kty', 'kid', 'alg', 'use'],
                properties: { kty: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string' }, use: { type: 'string', enum: ['sig'] } }
              }
            }
          }
        }
      }
    },
    callbackCheck: urlCheck(common, 'WeCom callback URL check', 'Answers the echo WeCom sends when an admin saves the callback URL.'),
    callbackEvent: acknowledged(common, 'WeCom callback events',
      'WeCom posts its encrypted events here (XML); off-boarding events end the member\'s sessions.',
      // Not acknowledged, so that WeCom resends: the store or WeCom (the recheck) unavailable, a
      // delivery of the event handled elsewhere, onEvent failed.
      [UpstreamError, UnavailableError, StoreUnavailableError, CallbackRetryError]),
    suiteCallbackCheck: urlCheck(common, 'Suite callback URL check',
      'Answers the echo WeCom sends when the service provider saves a suite\'s command callback URL (encrypted for the provider\'s CorpID).'),
    suiteCallbackPush: acknowledged(common, 'Suite pushes and the events of the corps that installed it',
      'WeCom posts a suite\'s encrypted pushes here (XML, for the SuiteId): suite_ticket is kept, newest first, for every instance; ' +
      'installs, changes and uninstalls are acted on once. As the suite\'s 数据回调 URL, the contact events of a corp that installed ' +
      'the suite (encrypted for its corpid) off-board its members.',
      // Not acknowledged, so that WeCom resends: the store unavailable, WeCom or an onEvent hook failing, a push this version does not act on.
      [UpstreamError, UnavailableError, StoreUnavailableError, CallbackRetryError])
  }
}

/** A callback's URL check: the decrypted echo, as plain text. */
function urlCheck (common: Common, summary: string, description: string) {
  return {
    ...common,
    summary,
    description,
    response: {
      200: { description: 'The decrypted echo', content: { 'text/plain': { schema: { type: 'string' } } } },
      ...errorResponses([CallbackInvalidError, CallbackForbiddenError])
    }
  }
}

/** A callback's delivery: WeCom's acknowledgement, or a refusal, or `retried` (not acknowledged: WeCom resends). */
function acknowledged (common: Common, summary: string, description: string, retried: Parameters<typeof errorResponses>[0]) {
  return {
    ...common,
    summary,
    description,
    response: {
      200: { description: 'WeCom\'s acknowledgement', content: { 'text/plain': { schema: { type: 'string', enum: ['success'] } } } },
      ...errorResponses([CallbackInvalidError, CallbackForbiddenError, ...retried])
    }
  }
}

/** The browser's way in and the JS-SDK signature (with `web`). */
function browserSchemas (common: Common) {
  return {
    webLogin: {
      ...common,
      summary: 'Start a web login (a page inside WeCom, or the PC browser)',
      description: 'Redirects to WeCom\'s authorize page (`via=oauth`, the default inside WeCom) or its PC login page (`via=sso`), ' +
        'with a single-use state bound to this browser by a cookie.',
      querystring: webLoginQuery(true),
      response: {
        302: { description: 'To WeCom\'s page', type: 'null' },
        ...errorResponses(WEB_BEGIN, { 400: ['FST_ERR_VALIDATION'] })
      }
    },
    webLoginParams: {
      ...common,
      summary: 'The parameters of @wecom/jssdk\'s createWWLoginPanel',
      description: 'An embedded QR login panel: its params, with a single-use state bound to this browser by a cookie.',
      querystring: webLoginQuery(false),
      response: {
        200: {
          type: 'object',
          required: ['login_type', 'appid', 'redirect_uri', 'state', 'redirect_type'],
          properties: {
            login_type: { type: 'string', enum: ['CorpApp', 'ServiceApp'] },
            appid: { type: 'string', description: 'The CorpID, or a third-party suite\'s SuiteID' },
            agentid: { type: 'string', description: 'A corp\'s app\'s AgentID; absent for a third-party suite' },
            redirect_uri: { type: 'string' },
            state: { type: 'string' },
            redirect_type: { type: 'string', enum: ['callback'] }
          }
        },
        ...errorResponses(WEB_BEGIN, { 400: ['FST_ERR_VALIDATION'] })
      }
    },
    webCallback: {
      ...common,
      summary: 'WeCom\'s redirect back after a web login',
      description: 'Checks the state against this browser\'s cookie, asks WeCom who the code names, checks the member ' +
        'as the mini program\'s login does, then sets the session cookies and redirects to where the login started.',
      querystring: {
        type: 'object',
        properties: { code: ascii(MAX_CODE, 'WeCom\'s code'), state: ascii(128, 'The state the login was given') }
      },
      response: {
        302: { description: 'Logged in: to the login\'s redirect, with the session cookies', type: 'null' },
        ...errorResponses([StateInvalidError, InvalidCodeError, SuiteUnknownError, WebNotConfiguredError, ...EXCHANGE], { 400: ['FST_ERR_VALIDATION'] })
      }
    },
    jssdkSignature: {
      ...common,
      summary: 'JS-SDK signatures of a page',
      description: 'What ww.register\'s getConfigSignature and getAgentConfigSignature return, for a page on web.origins ' +
        '(the # part is not signed), for the signed-in member\'s corp.',
      body: { type: 'object', required: ['url'], properties: { url: { type: 'string', minLength: 1, maxLength: 4096, description: 'The page\'s full URL' } } },
      security: [{ [SECURITY_SCHEME]: [] }] as Array<Record<string, string[]>>,
      response: {
        200: {
          type: 'object',
          required: ['corpId', 'agentId', 'config', 'agentConfig'],
          properties: { corpId: { type: 'string' }, agentId: { type: 'integer' }, config: pageSignature, agentConfig: pageSignature }
        },
        ...errorResponses([UrlNotAllowedError, WebNotConfiguredError, TokenMissingError, TokenInvalidError, TokenExpiredError, TokenRevokedError, CsrfError, UpstreamError, UnavailableError], BAD_BODY)
      }
    }
  }
}

/** The member's own sessions, whatever surface made them. */
function sessionSchemas (common: Common) {
  return {
    sessionsList: {
      ...common,
      summary: 'The signed-in member\'s sessions',
      description: 'Every live session of the member, whatever surface made it (mini program, page inside WeCom, PC browser), oldest first.',
      security: [{ [SECURITY_SCHEME]: [] }] as Array<Record<string, string[]>>,
      response: {
        200: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: sessionSummary } } },
        ...errorResponses([TokenMissingError, TokenInvalidError, TokenExpiredError, TokenRevokedError, StoreUnavailableError])
      }
    },
    sessionsEndOne: {
      ...common,
      summary: 'End one of the signed-in member\'s sessions',
      description: 'A sid that is not one of the member\'s ends nothing and is answered alike.',
      params: { type: 'object', required: ['sid'], properties: { sid: { type: 'string', minLength: 1, maxLength: 64 } } },
      security: [{ [SECURITY_SCHEME]: [] }] as Array<Record<string, string[]>>,
      response: {
        204: { description: 'Ended, if it was the member\'s', type: 'null' },
        ...errorResponses([TokenMissingError, TokenInvalidError, TokenExpiredError, TokenRevokedError, CsrfError, StoreUnavailableError], { 400: ['FST_ERR_VALIDATION'] })
      }
    },
    sessionsEndOthers: {
      ...common,
      summary: 'End all the signed-in member\'s sessions but the current one',
      security: [{ [SECURITY_SCHEME]: [] }] as Array<Record<string, string[]>>,
      response: {
        204: { description: 'The other sessions have ended', type: 'null' },
        ...errorResponses([TokenMissingError, TokenInvalidError, TokenExpiredError, TokenRevokedError, CsrfError, StoreUnavailableError])
      }
    }
  }
}
