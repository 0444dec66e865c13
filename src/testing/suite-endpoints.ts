/**
 * The service provider's endpoints as the simulator answers them (issue 19): a suite's access
 * token (doc path/90600, "获取第三方应用凭证"), with the suite's id and secret and a suite_ticket
 * pushed within the last 30 minutes.
 */
import type { EndpointContext } from './context.js'
import { jsonObject, type Reply } from './wire.js'

/** 40083: no such suite_id; 40001: a wrong suite_secret; 40085: no such suite_ticket, or one past its 30 minutes. */
export function getSuiteToken ({ suites, suiteTokens }: EndpointContext, _query: Record<string, string>, raw: string): Reply {
  const body = jsonObject(raw)
  if (body === undefined) return { errcode: 47001 }
  const { suite_id: suiteId, suite_secret: secret, suite_ticket: ticket } = body
  if (typeof suiteId !== 'string') return { errcode: 40083 }
  const suite = suites.suite(suiteId)
  if (suite === undefined) return { errcode: 40083 }
  if (secret !== suite.secret) return { errcode: 40001 }
  if (typeof ticket !== 'string' || !suites.ticketValid(suiteId, ticket)) return { errcode: 40085 }
  const { token, expiresIn } = suiteTokens.issue(suiteId)
  return { errcode: 0, suite_access_token: token, expires_in: expiresIn }
}
