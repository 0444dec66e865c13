const { isInsideWeCom } = require('./utils/auth')

App({
  globalData: {
    // Checked once at launch: WeCom has been seen to drop `environment` from getSystemInfo
    // later on (Android, after navigating back), which would wrongly lock members out mid-session.
    insideWeCom: false,
  },

  onLaunch() {
    this.globalData.insideWeCom = isInsideWeCom()
  },
})
