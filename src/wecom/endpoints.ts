import { z } from 'zod'
import type { Answer } from './transport.js'

/**
 * WeCom's endpoints as the call path knows them: one row each. Adding an endpoint is a row here
 * and the schema of its answer; admission.ts, client.ts and outcome.ts read the rest from the row.
 */
export interface EndpointSpec<T = Answer> {
  /** What breakers, budgets, refusals, spans and log lines call it: its path under /cgi-bin/, or a short name. */
  name: string
  /** Its path under the base URL. */
  path: string
  method: 'GET' | 'POST'
  /**
   * What it is called with: an app's `secret` (gettoken: its answers carry nothing of the
   * client's, so a refusal is the app's, and a failure backs the fetch off), or an app's
   * `access_token`, refreshed once when WeCom says it is stale.
   */
  credential: 'secret' | 'access_token'
  /**
   * What it fetches for a cache to keep, in log lines (`access token`, `JS-SDK ticket`): a
   * transport failure or -1 backs the app's next fetch off (1 s, doubling, at most a minute), so
   * that a login or page rate never becomes a fetch rate. Every `secret` endpoint fetches one.
   */
  fetches?: string
  /** It carries what a client sent (a login code): the client spends its share of the budget. */
  clientInput?: true
  /** A `forbidden` errcode here says the member may not use the app (403), not that the host's call failed. */
  memberCheck?: true
  /**
   * WeCom's own limits on the endpoint, in calls an hour per corp and per app (doc path/90506):
   * admission.ts keeps this server's calls under them, whatever api.budget says.
   */
  hourlyLimit?: { corp?: number, app?: number }
  /** Bytes of the answer read at most. */
  maxBody: number
  /** The fields of a successful answer that are used; an answer without them is malformed. */
  answer: z.ZodType<T>
}

/** The login's answers are a few hundred bytes; a body past this is not WeCom's and is not read on. */
export const SMALL_BODY = 64 * 1024
/** Other APIs list members or departments: a large corp's answer runs to megabytes. */
const LARGE_BODY = 16 * 1024 * 1024

export const text = z.string().min(1)

function emptyAsAbsent<T> (value: T | ''): T | undefined {
  return value === '' ? undefined : value
}

/** A string WeCom may answer empty or of another type: either is taken as absent. */
export const optionalText = z.string().optional().catch(undefined).transform(emptyAsAbsent)

/** A user_ticket (snsapi_privateinfo) for the profile call, absent when WeCom answers it empty. */
export const userTicket = z.string().max(512).optional().transform(emptyAsAbsent)

/** GET /cgi-bin/gettoken?corpid&corpsecret (doc path/91039). */
export const gettoken: EndpointSpec<{ access_token: string, expires_in: number }> = {
  name: 'gettoken',
  path: '/cgi-bin/gettoken',
  method: 'GET',
  credential: 'secret',
  fetches: 'access token',
  maxBody: SMALL_BODY,
  // A token goes into every later query string: one of absurd length is not WeCom's.
  answer: z.object({ access_token: text.max(512), expires_in: z.number().positive() })
}

/** GET /cgi-bin/miniprogram/jscode2session?access_token&js_code&grant_type (doc path/91507). */
export const jscode2session: EndpointSpec<{ corpid: string, userid: string, session_key: string }> = {
  name: 'jscode2session',
  path: '/cgi-bin/miniprogram/jscode2session',
  method: 'GET',
  credential: 'access_token',
  clientInput: true,
  maxBody: SMALL_BODY,
  answer: z.object({ corpid: text, userid: text, session_key: z.string() })
}

/** What user/get answers that a session keeps (doc path/90196); other fields are not read. */
export interface WecomUserInfo {
  userid: string
  name?: string
  department?: number[]
  position?: string
  status?: number
}

/** GET /cgi-bin/user/get?access_token&userid (doc path/90196). */
export const userGet: EndpointSpec<WecomUserInfo> = {
  name: 'user/get',
  path: '/cgi-bin/user/get',
  method: 'GET',
  credential: 'access_token',
  memberCheck: true,
  maxBody: SMALL_BODY,
  // A field of another type is left out rather than failing the login: only userid is required.
  answer: z.object({
    userid: text,
    name: z.string().optional().catch(undefined),
    department: z.array(z.number()).optional().catch(undefined),
    position: optionalText,
    status: z.number().optional().catch(undefined)
  })
}

/**
 * What auth/getuserinfo answers (doc path/91023), told apart: a `member` of the corp (its userid,
 * `CorpId/userid` for a member of a linked corp, kept as given; a `user_ticket` for
 * auth/getuserdetail with scope snsapi_privateinfo), or an `outsider` (a WeChat user or an external
 * contact, with no userid), whom a login refuses.
 */
export type WebUserIdentity =
  | { kind: 'member', userid: string, user_ticket?: string }
  | { kind: 'outsider', openid: string, external_userid?: string }

/** GET /cgi-bin/auth/getuserinfo?access_token&code (doc path/91023): who a web login's code names. */
export const authGetUserInfo: EndpointSpec<WebUserIdentity> = {
  name: 'auth/getuserinfo',
  path: '/cgi-bin/auth/getuserinfo',
  method: 'GET',
  credential: 'access_token',
  clientInput: true,
  maxBody: SMALL_BODY,
  // A member first: an answer with a userid is a member's whatever else it carries. The ticket goes
  // into the next call's body: one past WeCom's 512 bytes is not WeCom's.
  answer: z.union([
    z.object({ userid: text, user_ticket: userTicket })
      .transform((member) => ({ kind: 'member' as const, ...member })),
    z.object({ openid: text, external_userid: optionalText })
      .transform((outsider) => ({ kind: 'outsider' as const, ...outsider }))
  ])
}

/** What auth/getuserdetail answers (doc path/91023): the member's private fields, each as WeCom gave it. */
export interface WecomUserDetail {
  userid: string
  /** '0' unknown, '1' male, '2' female. */
  gender?: string
  avatar?: string
  qr_code?: string
  mobile?: string
  email?: string
  biz_mail?: string
  address?: string
}

/** A member's private fields. Only userid is required: a field the member did not grant comes back empty, and is left out. */
export const userDetail = {
  userid: text,
  gender: z.union([z.string(), z.number().transform(String)]).optional().catch(undefined).transform(emptyAsAbsent),
  avatar: optionalText,
  qr_code: optionalText,
  mobile: optionalText,
  email: optionalText,
  biz_mail: optionalText,
  address: optionalText
}

/** POST /cgi-bin/auth/getuserdetail?access_token with `{ user_ticket }` (doc path/91023). */
export const authGetUserDetail: EndpointSpec<WecomUserDetail> = {
  name: 'auth/getuserdetail',
  path: '/cgi-bin/auth/getuserdetail',
  method: 'POST',
  credential: 'access_token',
  memberCheck: true,
  maxBody: SMALL_BODY,
  answer: z.object(userDetail)
}

/** A JS-SDK ticket and its life in seconds (7200). */
export interface WecomTicket { ticket: string, expires_in: number }

// A ticket is signed into every page's config: one of absurd length is not WeCom's.
const ticketAnswer = z.object({ ticket: text.max(512), expires_in: z.number().positive() })

/** GET /cgi-bin/get_jsapi_ticket?access_token (doc path/90506): the corp's ticket, for `wx.config` / `ww.register`. */
export const getJsapiTicket: EndpointSpec<WecomTicket> = {
  name: 'get_jsapi_ticket',
  path: '/cgi-bin/get_jsapi_ticket',
  method: 'GET',
  credential: 'access_token',
  fetches: 'JS-SDK ticket',
  hourlyLimit: { corp: 400, app: 100 },
  maxBody: SMALL_BODY,
  answer: ticketAnswer
}

/** GET /cgi-bin/ticket/get?access_token&type=agent_config (doc path/90506): the app's ticket, for `agentConfig`. */
export const getAgentTicket: EndpointSpec<WecomTicket> = {
  name: 'ticket/get',
  path: '/cgi-bin/ticket/get',
  method: 'GET',
  credential: 'access_token',
  fetches: 'JS-SDK ticket',
  hourlyLimit: { app: 100 },
  maxBody: SMALL_BODY,
  answer: ticketAnswer
}

const known: readonly EndpointSpec<any>[] = [gettoken, jscode2session, userGet, authGetUserInfo, authGetUserDetail, getJsapiTicket, getAgentTicket]
const byPath = new Map(known.map((spec) => [spec.path, spec]))
const CGI_BIN = '/cgi-bin/'
/** WeCom's paths: /cgi-bin/ and words joined by '/' (no '..', no query, no host), bounded. */
const API_PATH = /^\/cgi-bin(\/[A-Za-z0-9_]{1,64}){1,6}$/
const anyAnswer = z.custom<Answer>(() => true)

/**
 * The row for a path the host calls through `api()`, or undefined for a path that is not one of
 * WeCom's. A path of the table keeps its row's name, so that it shares that row's breaker and budget.
 */
export function apiEndpoint (path: string, method: 'GET' | 'POST'): EndpointSpec | undefined {
  if (!API_PATH.test(path)) return undefined
  const row = byPath.get(path)
  return {
    name: row?.name ?? path.slice(CGI_BIN.length),
    path,
    method,
    credential: row?.credential ?? 'access_token',
    // The host's calls of a capped endpoint count against the same hourly caps as the plugin's.
    hourlyLimit: row?.hourlyLimit,
    maxBody: LARGE_BODY,
    answer: anyAnswer
  }
}
