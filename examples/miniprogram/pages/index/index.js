const auth = require('../../utils/auth')

Page({
  data: {
    view: 'loading', // loading | not-wecom | ready | signed-out | forbidden | unavailable | error
    user: null,
    retryIn: 0,
    message: '',
  },

  onLoad() {
    // Checked at launch (see app.js). The server refuses non-WeCom codes regardless; this just
    // explains the situation instead of showing a failed login.
    if (!getApp().globalData.insideWeCom) {
      this.setData({ view: 'not-wecom' })
      return
    }
    this.load()
  },

  onShow() {
    // On every show, not just the first load, so the menu cannot come back after the page
    // returns from the background. With no onShareAppMessage anywhere, nothing can be forwarded
    // into ordinary WeChat either way.
    wx.hideShareMenu()
  },

  onUnload() {
    clearInterval(this.retryTimer)
  },

  // Signs in on demand: request() logs in through wx.qy.login when there is no session yet.
  async load() {
    this.setData({ view: 'loading', message: '' })
    try {
      const me = await auth.request('/api/me')
      // Works whether the route answers { user } or the user object itself.
      this.setData({ view: 'ready', user: me.user || me })
    } catch (err) {
      this.showError(err)
    }
  },

  showError(err) {
    if (err.kind === 'unavailable') {
      this.waitBeforeRetry(err.retryAfter)
      return
    }
    const view = err.kind === 'forbidden' || err.kind === 'not-wecom' ? err.kind : 'error'
    this.setData({ view, message: err.message })
  },

  // The button stays disabled for Retry-After seconds so impatient taps do not add to the load
  // that made the server (or WeCom behind it) answer 503.
  waitBeforeRetry(seconds) {
    clearInterval(this.retryTimer)
    this.setData({ view: 'unavailable', retryIn: seconds })
    this.retryTimer = setInterval(() => {
      const retryIn = this.data.retryIn - 1
      this.setData({ retryIn })
      if (retryIn <= 0) clearInterval(this.retryTimer)
    }, 1000)
  },

  onRetry() {
    if (this.data.retryIn <= 0) this.load()
  },

  async onLogout() {
    await auth.logout()
    // Stay signed out until asked: logging straight back in would make the button pointless.
    this.setData({ view: 'signed-out', user: null })
  },
})
