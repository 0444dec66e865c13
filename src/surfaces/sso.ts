import type { PageApp } from './oauth.js'

/**
 * What `@wecom/jssdk`'s `ww.createWWLoginPanel({ params })` takes (doc path/98152): a corp's app's
 * (`CorpApp`, its AgentID), or a third-party suite's (`ServiceApp`, appid the SuiteID, no AgentID).
 */
export interface LoginPanelParams {
  login_type: 'CorpApp' | 'ServiceApp'
  appid: string
  agentid?: string
  redirect_uri: string
  state: string
  redirect_type: 'callback'
}

/** The PC login page's parameters (doc path/98151): WeCom's QR code, or one click from the desktop client. */
export function loginPanelParams (app: PageApp, redirectUri: string, state: string): LoginPanelParams {
  return app.agentId === undefined
    ? { login_type: 'ServiceApp', appid: app.appid, redirect_uri: redirectUri, state, redirect_type: 'callback' }
    : { login_type: 'CorpApp', appid: app.appid, agentid: String(app.agentId), redirect_uri: redirectUri, state, redirect_type: 'callback' }
}

/** The PC login page's URL, `login_type&appid[&agentid]&redirect_uri&state`. */
export function ssoUrl (base: string, app: PageApp, redirectUri: string, state: string): string {
  const { redirect_type: _inPanelOnly, ...params } = loginPanelParams(app, redirectUri, state)
  return `${base}?${new URLSearchParams(params as Record<string, string>).toString()}`
}
