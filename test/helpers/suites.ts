import { randomBytes } from 'node:crypto'
import { callbackRequest, eventXml } from '../../src/testing/envelope.js'

// A service provider's suites for the tests (issue 19), and their pushes as WeCom makes them.

export const PROVIDER = 'wwprovider000000001'
const key = () => randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, 'a').slice(0, 43)
export interface TestSuite { suiteId: string, secret: string, token: string, encodingAESKey: string, kind: 'third-party' | 'custom' }
export const SUITE: TestSuite = { suiteId: 'wwsuite0000000001', secret: 'suite-secret-not-a-real-one', token: 'suite-token', encodingAESKey: key(), kind: 'third-party' }
export const OTHER: TestSuite = { suiteId: 'wwsuite0000000002', secret: 'other-suite-secret', token: 'other-token', encodingAESKey: key(), kind: 'custom' }
export const SEAL_KEYS = ['a-seal-key-of-at-least-32-characters!!']
export const suiteOptions = { provider: { corpId: PROVIDER }, suites: [SUITE, OTHER], sealKeys: SEAL_KEYS }

export const now = () => Math.floor(Date.now() / 1000)

/** A push to the suites' callback, encrypted for `receiver` (the SuiteId, as WeCom does). */
export function push (suite: TestSuite, fields: Record<string, string | number>, receiver = suite.suiteId, timestamp = now()) {
  const { query, body } = callbackRequest(receiver, suite, eventXml(fields), { agentId: 0 }, timestamp)
  return { method: 'POST' as const, url: `/wecom/suite/callback?${query}`, payload: body, headers: { 'content-type': 'text/xml' } }
}

export const ticketPush = (suite: TestSuite, ticket: string, stamp: number) =>
  push(suite, { SuiteId: suite.suiteId, InfoType: 'suite_ticket', TimeStamp: stamp, SuiteTicket: ticket })
