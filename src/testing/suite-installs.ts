/**
 * The corps that installed the provider's suites, as WeCom keeps them (issue 19): an install's
 * single-use AuthCode, its permanent code, the suite's app in the corp, and each member's
 * open_userid for the provider. Times follow the simulator clock.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Directory } from './directory.js'
import { SimulatorNotFoundError } from './errors.js'
import { Expiring } from './expiring.js'
import type { SimulatorClock } from './time.js'

/** A corp's install of a suite. */
export interface SuiteInstall { suiteId: string, corpId: string, permanentCode: string, agentId: number }

/** Seconds an AuthCode lives (doc path/90603: ten minutes). */
const AUTH_CODE_LIFE_S = 600
/** The first AgentID of a suite's app in a corp: far from the corps' own apps'. */
const FIRST_AGENT = 3_000_000

/** What the simulator keys a third-party corp token by (get_corp_token), apart from any app's secret. */
export const corpTokenKey = (install: SuiteInstall): string => `suite\u0000${install.permanentCode}`

export class SuiteInstalls {
  /** Installs per suite, by corpId. */
  readonly #installs = new Map<string, Map<string, SuiteInstall>>()
  readonly #authCodes: Expiring<SuiteInstall>
  #nextAgent = FIRST_AGENT

  constructor (clock: SimulatorClock, private readonly provider: string, private readonly directory: Directory) {
    this.#authCodes = new Expiring(clock, AUTH_CODE_LIFE_S * 1000)
  }

  /** The corp installs the suite (or is given a new permanent code): the AuthCode of the push. */
  install (suiteId: string, corpId: string): string {
    this.directory.corp(corpId)
    const former = this.of(suiteId, corpId)
    const install = { suiteId, corpId, permanentCode: randomBytes(32).toString('base64url'), agentId: former?.agentId ?? this.#nextAgent++ }
    // Kept at once: WeCom's install stands whether or not the provider fetches the code.
    this.#corps(suiteId).set(corpId, install)
    return this.#authCodes.issue(install, 32)
  }

  /**
   * The secrets the install's corp tokens were issued for, which end with it: 代开发's gettoken
   * takes the permanent code itself, get_corp_token is keyed apart from any app's secret.
   * @throws SimulatorNotFoundError when the corp has not installed the suite
   */
  uninstall (suiteId: string, corpId: string): string[] {
    const install = this.of(suiteId, corpId)
    if (install === undefined) throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has not installed suite ${JSON.stringify(suiteId)}`)
    this.#corps(suiteId).delete(corpId)
    return [install.permanentCode, corpTokenKey(install)]
  }

  /** Spends an AuthCode: the install it was issued for, if that install still stands. */
  redeem (suiteId: string, authCode: string): SuiteInstall | undefined {
    const install = this.#authCodes.take(authCode)
    return install !== undefined && install.suiteId === suiteId && this.of(suiteId, install.corpId) === install ? install : undefined
  }

  of (suiteId: string, corpId: string): SuiteInstall | undefined {
    return this.#installs.get(suiteId)?.get(corpId)
  }

  /** The corp's installs, of every suite. */
  ofCorp (corpId: string): SuiteInstall[] {
    return [...this.#installs.values()].flatMap((corps) => corps.get(corpId) ?? [])
  }

  /** The install whose app in the corp has this AgentID: a 代开发 app's pages are the corp's own. */
  byAgent (corpId: string, agentId: number): SuiteInstall | undefined {
    for (const corps of this.#installs.values()) {
      const install = corps.get(corpId)
      if (install?.agentId === agentId) return install
    }
    return undefined
  }

  /** The install a permanent code belongs to, of any suite (gettoken of a 代开发 app takes it as a secret). */
  byCode (corpId: string, permanentCode: string): SuiteInstall | undefined {
    for (const corps of this.#installs.values()) {
      const install = corps.get(corpId)
      if (install?.permanentCode === permanentCode) return install
    }
    return undefined
  }

  /** The provider's id for a member: the same in every corp and suite of this provider, another provider's differs. */
  openUserid (corpId: string, userid: string): string {
    return `wo${createHash('sha256').update(`${this.provider}\u0000${corpId}\u0000${userid}`).digest('base64url').slice(0, 26)}`
  }

  /** What jscode2session answers a suite for a member of a corp that has not installed it: an encrypted userid. */
  encryptedUserid (suiteId: string, userid: string): string {
    return `wm${createHash('sha256').update(`${suiteId}\u0000${userid}`).digest('base64url').slice(0, 26)}`
  }

  #corps (suiteId: string): Map<string, SuiteInstall> {
    let corps = this.#installs.get(suiteId)
    if (corps === undefined) this.#installs.set(suiteId, corps = new Map())
    return corps
  }
}
