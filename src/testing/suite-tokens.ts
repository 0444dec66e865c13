/** The suite access tokens the simulator issued (service/get_suite_token, suite-endpoints.ts). */
import { Expiring } from './expiring.js'
import type { SimulatorClock } from './time.js'

/** Seconds a suite_access_token lives, as WeCom says in expires_in. */
const SUITE_TOKEN_LIFE_S = 7200

export class SuiteTokens {
  readonly #tokens: Expiring<{ suiteId: string }>

  constructor (clock: SimulatorClock) {
    this.#tokens = new Expiring(clock, SUITE_TOKEN_LIFE_S * 1000)
  }

  issue (suiteId: string): { token: string, expiresIn: number } {
    return { token: this.#tokens.issue({ suiteId }, 48), expiresIn: SUITE_TOKEN_LIFE_S }
  }

  /** The suite a live token was issued to, or 40082 (WeCom's invalid suite_access_token) for any other. */
  check (token: string | undefined): string | number {
    return (token === undefined ? undefined : this.#tokens.get(token)?.suiteId) ?? 40082
  }
}
