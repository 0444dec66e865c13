/**
 * What WeCom issues and later checks: access tokens (gettoken) and the single-use codes of
 * wx.qy.login with their session_keys. Times follow the simulator clock, so advance() ages them.
 */
import { randomBytes } from 'node:crypto'
import type { Directory } from './directory.js'
import { Expiring } from './expiring.js'
import { nonNegative, type SimulatorClock } from './time.js'

/**
 * Expired and revoked tokens are remembered this long so that they answer 42001 (or the
 * expireTokens errcode) rather than 40014; after that they are forgotten, which keeps the token
 * table bounded however often a test rotates tokens.
 */
const TOKEN_MEMORY_MS = 24 * 60 * 60 * 1000

export interface TokenState {
  corpId: string
  /** The app the token was issued to: the mini program's (the corp's agentId) or a web app's. */
  agentId: number
  appKey: string
  expiresAt: number
  revokedWith?: number
  revokedAt?: number
}

interface CodeState {
  corpId: string
  userid: string
  sessionKey: string
}

export class Credentials {
  private tokenTtlMs: number
  private readonly codes: Expiring<CodeState>
  private readonly tokens = new Map<string, TokenState>()
  /** The live token of each app, keyed by corpId and secret: two apps of a corp differ. */
  private readonly appTokens = new Map<string, string>()

  /** `tokenTtl` and `codeTtl` in seconds. */
  constructor (private readonly clock: SimulatorClock, private readonly directory: Directory, tokenTtl: number, codeTtl: number) {
    this.tokenTtlMs = nonNegative('tokenTtl', tokenTtl) * 1000
    this.codes = new Expiring(clock, nonNegative('codeTtl', codeTtl) * 1000)
  }

  setTokenTtl (seconds: number): void {
    this.tokenTtlMs = nonNegative('tokenTtl', seconds) * 1000
  }

  /**
   * The app's live token with its remaining seconds, or a new one: WeCom hands back the same token
   * while it is valid; one with under a second left is renewed so that expires_in is never 0.
   * The caller has checked the secret and found the app's AgentID.
   */
  token (corpId: string, secret: string, agentId: number): { token: string, expiresIn: number } {
    const at = this.clock.now()
    const appKey = `${corpId}\u0000${secret}`
    const current = this.appTokens.get(appKey)
    const state = current === undefined ? undefined : this.tokens.get(current)
    if (current !== undefined && state && state.revokedWith === undefined) {
      const remaining = Math.floor((state.expiresAt - at) / 1000)
      if (remaining >= 1) return { token: current, expiresIn: remaining }
    }
    this.sweepTokens(at)
    // Random bytes only: a token must reveal nothing about the secret.
    const token = randomBytes(48).toString('base64url')
    this.tokens.set(token, { corpId, agentId, appKey, expiresAt: at + this.tokenTtlMs })
    this.appTokens.set(appKey, token)
    return { token, expiresIn: Math.floor(this.tokenTtlMs / 1000) }
  }

  /** The token's state, or the errcode WeCom answers for it. */
  check (token: string | undefined): TokenState | number {
    const state = token === undefined ? undefined : this.tokens.get(token)
    if (!state) return 40014
    if (state.revokedWith !== undefined) return state.revokedWith
    if (state.expiresAt <= this.clock.now()) return 42001
    return state
  }

  /** Ends live tokens (of one corp, or all) early; using them afterwards answers `errcode`. */
  expire (corpId: string | undefined, errcode: number): void {
    if (corpId !== undefined) this.directory.corp(corpId)
    const at = this.clock.now()
    for (const state of this.tokens.values()) {
      if (corpId !== undefined && state.corpId !== corpId) continue
      if (state.revokedWith !== undefined || state.expiresAt <= at) continue
      state.revokedWith = errcode
      state.revokedAt = at
      this.appTokens.delete(state.appKey)
    }
  }

  /** Ends the live token of each of the corp's apps keyed by these secrets (an uninstalled suite's). */
  endApp (corpId: string, secrets: readonly string[], errcode: number): void {
    const at = this.clock.now()
    for (const secret of secrets) {
      const appKey = `${corpId}\u0000${secret}`
      const state = this.tokens.get(this.appTokens.get(appKey) ?? '')
      this.appTokens.delete(appKey)
      if (state === undefined || state.revokedWith !== undefined) continue
      state.revokedWith = errcode
      state.revokedAt = at
    }
  }

  /** Like wx.qy.login: a single-use code, and a new session_key for the member. */
  issueCode (corpId: string, userid: string): string {
    // Members outside the visible range still get codes, as in WeCom; user/get refuses them.
    this.directory.member(corpId, userid)
    const sessionKey = randomBytes(16).toString('base64')
    const code = this.codes.issue({ corpId, userid, sessionKey }, 24)
    this.directory.corp(corpId).sessionKeys.set(userid, sessionKey)
    return code
  }

  /** Spends a code: what it was issued for, or 40029 (unknown, spent or expired). */
  redeem (code: string): CodeState | number {
    // Spent on first exchange, even when the token belongs to another corp: the caller learns
    // the right corpid and must get a fresh code.
    return this.codes.take(code) ?? 40029
  }

  private sweepTokens (at: number): void {
    for (const [token, state] of this.tokens) {
      const endedAt = state.revokedAt ?? state.expiresAt
      if (endedAt + TOKEN_MEMORY_MS <= at) this.tokens.delete(token)
    }
  }
}
