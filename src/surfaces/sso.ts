import type { WebAppCredentials } from './oauth.js'

/** What `@wecom/jssdk`'s `ww.createWWLoginPanel({ params })` takes for a self-built app (doc path/98152). */
export interface LoginPanelParams {
  login_type: 'CorpApp'
  appid: string
  agentid: string
  redirect_uri: string
  state: string
  redirect_type: 'callback'
}

/** The PC login page's parameters (doc path/98151): WeCom's QR code, or one click from the desktop client. */
export function loginPanelParams (app: WebAppCredentials, redirectUri: string, state: string): LoginPanelParams {
  return { login_type: 'CorpApp', appid: app.corpId, agentid: String(app.agentId), redirect_uri: redirectUri, state, redirect_type: 'callback' }
}

/** The PC login page's URL, `login_type=CorpApp&appid&agentid&redirect_uri&state`. */
export function ssoUrl (base: string, app: WebAppCredentials, redirectUri: string, state: string): string {
  const { redirect_type: _inPanelOnly, ...params } = loginPanelParams(app, redirectUri, state)
  return `${base}?${new URLSearchParams(params).toString()}`
}
