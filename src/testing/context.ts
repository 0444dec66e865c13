/**
 * What an endpoint's answer is given (the simulator's state) and the shape of a row of
 * ENDPOINTS: apart from the table, so that answers in files of their own can name them.
 */
import type { Credentials } from './credentials.js'
import type { Directory } from './directory.js'
import type { SuitePushes } from './suite-pushes.js'
import type { SuiteInstalls } from './suite-installs.js'
import type { SuiteTokens } from './suite-tokens.js'
import type { JsapiTickets } from './tickets.js'
import type { WebLogins } from './web-logins.js'
import type { Reply } from './wire.js'

/** What an endpoint's answer may read and change. */
export interface EndpointContext {
  directory: Directory
  credentials: Credentials
  /** The codes and user_tickets of the web pages. */
  web: WebLogins
  tickets: JsapiTickets
  /** The provider's suites and the tickets pushed to them; the suite tokens issued. */
  suites: SuitePushes
  suiteTokens: SuiteTokens
  /** The corps that installed the suites. */
  installs: SuiteInstalls
  /** The bodies message/send accepted, per corp, oldest first. */
  messages: Array<{ corpId: string, body: Record<string, unknown> }>
}

/** Query parameters as WeCom parsed them, and the body (read only for a POST endpoint). */
export type Answer = (context: EndpointContext, query: Record<string, string>, body: string) => Reply

export interface Endpoint {
  /** Under the simulator's URL, e.g. '/cgi-bin/gettoken'. */
  path: string
  /** WeCom answers another method 43001 (GET wanted) or 43002 (POST wanted). */
  method: 'GET' | 'POST'
  /** One of a login's three calls: listed in `calls` (the others are counted but not enumerable). */
  login?: true
  answer: Answer
}
