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
  /** It carries what a client sent (a login code): the client spends its share of the budget. */
  clientInput?: true
  /** A `forbidden` errcode here says the member may not use the app (403), not that the host's call failed. */
  memberCheck?: true
  /** Bytes of the answer read at most. */
  maxBody: number
  /** The fields of a successful answer that are used; an answer without them is malformed. */
  answer: z.ZodType<T>
}

/** The login's answers are a few hundred bytes; a body past this is not WeCom's and is not read on. */
const SMALL_BODY = 64 * 1024
/** Other APIs list members or departments: a large corp's answer runs to megabytes. */
const LARGE_BODY = 16 * 1024 * 1024

const text = z.string().min(1)

/** GET /cgi-bin/gettoken?corpid&corpsecret (doc path/91039). */
export const gettoken: EndpointSpec<{ access_token: string, expires_in: number }> = {
  name: 'gettoken',
  path: '/cgi-bin/gettoken',
  method: 'GET',
  credential: 'secret',
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
    position: z.string().optional().catch(undefined).transform((value) => value === '' ? undefined : value),
    status: z.number().optional().catch(undefined)
  })
}

const known: readonly EndpointSpec<any>[] = [gettoken, jscode2session, userGet]
const byPath = new Map(known.map((spec) => [spec.path, spec]))
const CGI_BIN = '/cgi-bin/'
/** WeCom's paths: /cgi-bin/ and words joined by '/' (no '..', no query, no host), bounded. */
const API_PATH = /^\/cgi-bin(\/[A-Za-z0-9_]{1,64}){1,6}$/
const anyAnswer = z.custom<Answer>(() => true)
const memberChecks = new Set(known.filter((spec) => spec.memberCheck === true).map((spec) => spec.name))

/** True when a `forbidden` errcode of the endpoint named so speaks of the member (see `memberCheck`). */
export function checksMember (name: string): boolean {
  return memberChecks.has(name)
}

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
    maxBody: LARGE_BODY,
    answer: anyAnswer
  }
}
