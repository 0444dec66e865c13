// Session handling for the fastify-wecom-auth server: WeCom login, bearer tokens, refresh.
// Pages only call request() and logout(); logging in happens lazily when a call needs a session.

const { API_BASE } = require('./config')

const KEY = {
  accessToken: 'wecom.accessToken',
  refreshToken: 'wecom.refreshToken',
  corpId: 'wecom.corpId',
}

// 401 codes from the server's guard that a new access token can cure.
const TOKEN_CODES = ['WECOM_TOKEN_EXPIRED', 'WECOM_TOKEN_INVALID', 'WECOM_TOKEN_REVOKED', 'WECOM_TOKEN_MISSING']
const FORBIDDEN_CODES = ['WECOM_USER_FORBIDDEN', 'WECOM_CORP_NOT_ALLOWED']
const DEFAULT_RETRY_AFTER = 30 // seconds, when a 503 comes without a usable Retry-After

// kind: 'not-wecom' | 'forbidden' | 'unavailable' | 'network' | 'failed'; pages switch on it.
class AuthError extends Error {
  constructor(kind, message, extra) {
    super(message)
    this.name = 'AuthError'
    this.kind = kind
    Object.assign(this, extra) // status, code, retryAfter
  }
}

// A courtesy, not a defence: the server fails closed anyway (WeCom's jscode2session refuses any
// code that did not come from wx.qy.login), and `environment` is known to go missing at times.
// This only spares people in ordinary WeChat a confusing error.
function isInsideWeCom() {
  if (!wx.qy || typeof wx.qy.login !== 'function') return false
  try {
    return wx.getSystemInfoSync().environment === 'wxwork'
  } catch (e) {
    return false
  }
}

function send(path, { method = 'GET', data, token } = {}) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: API_BASE + path,
      method,
      data,
      header: token ? { Authorization: `Bearer ${token}` } : {},
      timeout: 15000,
      success: resolve, // any HTTP status lands here; callers read res.statusCode
      fail: (err) => reject(new AuthError('network', err.errMsg || 'network error')),
    })
  })
}

function codeOf(res) {
  return res.data && typeof res.data === 'object' ? res.data.code : undefined
}

function retryAfterSeconds(res) {
  const header = res.header || {}
  const name = Object.keys(header).find((k) => k.toLowerCase() === 'retry-after')
  const value = name ? String(header[name]).trim() : ''
  if (!value) return DEFAULT_RETRY_AFTER
  if (/^\d+$/.test(value)) return Number(value)
  const date = Date.parse(value) // Retry-After may also be an HTTP date
  return Number.isNaN(date) ? DEFAULT_RETRY_AFTER : Math.max(0, Math.ceil((date - Date.now()) / 1000))
}

function failure(res) {
  const code = codeOf(res)
  const extra = { status: res.statusCode, code }
  if (res.statusCode === 403 && FORBIDDEN_CODES.includes(code)) {
    return new AuthError('forbidden', 'no access', extra)
  }
  if (res.statusCode === 503 || res.statusCode === 429) {
    return new AuthError('unavailable', 'try again later', Object.assign(extra, { retryAfter: retryAfterSeconds(res) }))
  }
  const message = (res.data && res.data.message) || `HTTP ${res.statusCode}`
  return new AuthError('failed', message, extra)
}

function saveSession(data) {
  wx.setStorageSync(KEY.accessToken, data.access_token)
  // A login while the server's session store is down comes without a refresh token: the next
  // expiry then leads to a new wx.qy.login instead of a refresh.
  if (data.refresh_token) wx.setStorageSync(KEY.refreshToken, data.refresh_token)
  else wx.removeStorageSync(KEY.refreshToken)
}

// The remembered corpId survives logout on purpose: it is not a credential, and a wrong one only
// costs the 409 round trip it was meant to save.
function clearSession() {
  wx.removeStorageSync(KEY.accessToken)
  wx.removeStorageSync(KEY.refreshToken)
}

function qyLogin() {
  return new Promise((resolve, reject) => {
    if (!wx.qy) {
      reject(new AuthError('not-wecom', 'wx.qy is only available inside WeCom'))
      return
    }
    wx.qy.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new AuthError('failed', res.errMsg || 'no code'))),
      fail: (err) => reject(new AuthError('failed', err.errMsg || 'wx.qy.login failed')),
    })
  })
}

// A code is good for one exchange only, so every attempt starts with a fresh wx.qy.login.
async function postLogin(corpId) {
  const code = await qyLogin()
  // An undefined corpId is dropped when the body is serialised to JSON.
  return send('/wecom/login', { method: 'POST', data: { code, corpId } })
}

async function loginWithCode() {
  // Without a remembered corpId the server may guess the wrong one of several associated corps.
  let corpId = wx.getStorageSync(KEY.corpId) || undefined
  let res = await postLogin(corpId)

  // Both answers mean the first code is spent. One more code, one more try, never a loop:
  // a misbehaving server must not make us hammer wx.qy.login and, through it, WeCom's quota.
  const code = codeOf(res)
  if (res.statusCode === 409 && code === 'WECOM_CORP_MISMATCH') {
    corpId = res.data.corpId
    res = await postLogin(corpId)
  } else if (res.statusCode === 401 && code === 'WECOM_INVALID_CODE') {
    res = await postLogin(corpId)
  }

  if (res.statusCode !== 200) {
    // A remembered corp the server no longer serves would otherwise fail every future login.
    if (res.statusCode === 403) wx.removeStorageSync(KEY.corpId)
    throw failure(res)
  }
  saveSession(res.data)
  wx.setStorageSync(KEY.corpId, res.data.user.corpid)
  return res.data.access_token
}

// WECOM_TOKEN_REVOKED: the session was ended (logout elsewhere, an admin, or WeCom's own event when
// the member was deleted, disabled or taken out of the visible range). Its refresh token is dead
// too, so straight to wx.qy.login: a member still allowed is back at once, one off-boarded gets
// the 403 the server answers ('forbidden').
async function refreshOrLogin(revoked) {
  if (revoked) {
    clearSession()
    return loginWithCode()
  }
  const refreshToken = wx.getStorageSync(KEY.refreshToken)
  if (refreshToken) {
    const res = await send('/wecom/refresh', { method: 'POST', data: { refresh_token: refreshToken } })
    if (res.statusCode === 200) {
      saveSession(res.data) // the refresh token rotates: the old one is now dead
      return res.data.access_token
    }
    // Only a 401 (WECOM_REFRESH_INVALID: expired, revoked, already used) calls for a new login.
    // Anything else is the server being unwell, and a login would fail the same way.
    if (res.statusCode !== 401) throw failure(res)
    clearSession()
  }
  return loginWithCode()
}

// One renewal at a time. Parallel refreshes would each rotate the refresh token, and all but the
// first would be refused and fall through to extra logins; so concurrent 401s share this promise.
let inFlight = null

function renewSession(failedToken, code) {
  const current = wx.getStorageSync(KEY.accessToken)
  // Someone renewed while this call was waiting for its 401: use their token, do not renew again.
  if (current && current !== failedToken) return Promise.resolve(current)
  if (!inFlight) {
    inFlight = refreshOrLogin(code === 'WECOM_TOKEN_REVOKED').then(
      (token) => {
        inFlight = null
        return token
      },
      (err) => {
        inFlight = null
        throw err
      },
    )
  }
  return inFlight
}

// Every call to the API goes through here. Resolves with the response body on 2xx; rejects with
// an AuthError otherwise.
async function request(path, { method = 'GET', data } = {}) {
  let token = wx.getStorageSync(KEY.accessToken)
  if (!token) token = await renewSession(token)

  let res = await send(path, { method, data, token })
  if (res.statusCode === 401 && TOKEN_CODES.includes(codeOf(res))) {
    token = await renewSession(token, codeOf(res))
    // Once: a second 401 with a brand-new token is reported, not retried.
    res = await send(path, { method, data, token })
  }

  if (res.statusCode >= 200 && res.statusCode < 300) return res.data
  throw failure(res)
}

// The refresh token names the session on its own, so a logout with it works even when the access
// token has expired (a page left open past its 15 minutes): a bearer-only logout would then get a
// 401, revoke nothing, and leave the forgotten refresh token alive on the server for its 30 days.
async function logout() {
  const refreshToken = wx.getStorageSync(KEY.refreshToken)
  const token = wx.getStorageSync(KEY.accessToken)
  // Forgotten first, so that a call made while the logout is on its way does not use the session.
  clearSession()
  try {
    if (refreshToken) {
      await send('/wecom/logout', { method: 'POST', data: { refresh_token: refreshToken } })
    } else if (token) {
      // A login while the session store was down has no refresh token: the bearer is all there is.
      // `{}` rather than no body: wx.request always sends Content-Type: application/json, and
      // Fastify refuses an empty body with that type.
      await send('/wecom/logout', { method: 'POST', data: {}, token })
    }
  } catch (e) {
    // Offline: the device has forgotten the session; what the server could not revoke ends when
    // its tokens expire.
  }
}

module.exports = { request, logout, isInsideWeCom, AuthError }
