import type { LightMyRequestResponse } from 'fastify'
import type { WecomSimulator } from '../../src/testing/simulator.js'

interface Asserts {
  ok (value: unknown, message: string): unknown
  notOk (value: unknown, message: string): unknown
  notMatch (value: string, pattern: RegExp, message: string): unknown
}

/** Every WeCom access token the simulator has seen in a request so far. */
export function seenAccessTokens (sim: WecomSimulator, into: Set<string>): void {
  for (const r of sim.requests) if (r.query.access_token !== undefined) into.add(r.query.access_token)
}

/**
 * Not one log line, and no response, holds a secret; error bodies name no URL, query parameter
 * or WeCom field that would carry one.
 */
export function assertNoSecrets (t: Asserts, logLines: readonly string[], responses: readonly LightMyRequestResponse[], secrets: ReadonlyArray<[string, ReadonlySet<string>]>): void {
  const everyLog = logLines.join('\n')
  for (const [kind, values] of secrets) {
    t.ok(values.size > 0, `some ${kind} was seen, so its absence means something`)
    for (const value of values) {
      t.notOk(everyLog.includes(value), `no ${kind} in the logs`)
      t.notOk(responses.some((res) => res.body.includes(value)), `no ${kind} in a response`)
    }
  }
  for (const res of responses.filter((r) => r.statusCode >= 400)) {
    t.notMatch(res.body, /access_token|corpsecret|session_key|cgi-bin/, `error ${res.statusCode} names no secret or URL`)
  }
}

/** Not one of the secrets is in `text` (spans and metrics as exported, say), nor their names of a URL. */
export function assertNoSecretsIn (t: Asserts, where: string, text: string, secrets: ReadonlyArray<[string, ReadonlySet<string>]>): void {
  for (const [kind, values] of secrets) {
    t.ok(values.size > 0, `some ${kind} was seen, so its absence means something`)
    for (const value of values) t.notOk(text.includes(value), `no ${kind} in ${where}`)
  }
  t.notMatch(text, /access_token|corpsecret|js_code|cgi-bin/, `${where} names no secret's parameter or URL`)
}
