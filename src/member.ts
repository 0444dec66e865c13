// The domain's types every way in shares: a login's context, the verified login, the login flow.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WecomMember } from './options.js'
import type { WecomUserDetail } from './wecom/endpoints.js'

/** Where a login or recheck comes from, for the hooks, the log and the budget. */
export interface LoginContext {
  /** The corp to log in with; the first configured corp when absent. */
  corpId?: string
  /** The suite whose mini program logs in (one of `suites`); the configured corps' when absent. */
  suiteId?: string
  request?: FastifyRequest
  log: FastifyBaseLogger
}

/** A member's private fields as auth/getuserdetail gave them (doc path/91023): only those granted. */
export type WecomProfile = WecomUserDetail

/** Where a session was made: the mini program, a page inside WeCom (OAuth2), or the PC browser (web login). */
export type Surface = 'miniprogram' | 'h5' | 'web'

/** What a way in hands the sessions: a member WeCom vouched for. */
export interface VerifiedLogin {
  member: WecomMember
  /** The way in; `miniprogram` when absent. */
  surface?: Surface
  /** The suite the member's corp installed, for a suite's login; absent for a configured corp. */
  suiteId?: string
  /** WeCom's session_key for this member (the mini program's only): for the vault only, never for a reply. */
  sessionKey?: string
  /**
   * What auth/getuserdetail gave for a web login with `snsapi_privateinfo` (mobile, email, avatar…):
   * sealed at rest with the session, read with `app.wecom.profile(request)`, never in a token.
   */
  profile?: WecomProfile
  /** Epoch ms when WeCom answered jscode2session: of a member's session_keys, the latest answer's is kept. */
  answeredAt: number
}

/** The mini program's way in, and the member check the sessions ask again at refresh. */
export interface LoginFlow {
  /** code → verified member, or a typed refusal from the errors table. */
  login (code: string, context: LoginContext): Promise<VerifiedLogin>
  /**
   * user/get + status + authorize, as at login: for rechecks of a living session, on the app of its
   * `surface` (the web app's visible range for `h5` and `web`; the mini program's otherwise).
   */
  checkMember (corpId: string, userid: string, context: LoginContext, surface?: Surface, suiteId?: string): Promise<WecomMember>
  /**
   * Whether the corp still has the suite installed since before `startedAt` (epoch ms): a session
   * of a suite's corp is refreshed only then. Absent without `suites`.
   */
  installed? (suiteId: string, corpId: string, startedAt: number): Promise<boolean>
}
