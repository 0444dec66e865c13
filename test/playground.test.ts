import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildExampleServer, connectSimulator, DEMO_CLIENT_CORP_ID, DEMO_CORP_ID, DEMO_SUITE } from '../examples/app.js'
import { jsapiSignature } from '../src/testing/simulator.js'
import { freePort } from './helpers/redis.js'

// The playground in a real headless Chromium (Debian's, which .ci/run installs): the clicks a
// newcomer makes, and what the page shows after each. Outside CI a missing Chromium skips the
// test with a message; under CI=true it fails, as the Redis tests do.
// SCREENSHOT=examples/playground.png npx tap test/playground.test.ts refreshes the README's picture.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const missing = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`
/** Every wait is for something the page shows; generous, for a browser on a busy 2-core box. */
const WAIT = 15_000

/** The example server on a loopback port, its simulator's callbacks saved to it. */
async function serve (t: Test) {
  const { app, sim } = await buildExampleServer({}, false)
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await connectSimulator(sim!, base)
  return { base, sim: sim! }
}

// One Chromium for the file, launched by the first test that needs it: each launch costs some
// 4 CPU-s, a large share of `npm test` on CI's 2 cores. Each page gets a context of its own
// (its own cookie jar and storage, as a separate browser profile has).
let launched: Promise<Browser> | undefined
t.teardown(async () => { await (await launched)?.close() })

/**
 * The example server on a port chosen first: the demo web app trusts this server's host and port,
 * as WeCom's console would. Another process may take a free port before this one listens on it:
 * then another port.
 */
async function serveOnChosenPort (t: Test) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const { app, sim } = await buildExampleServer({ PORT: String(port) }, false)
    try {
      const base = await app.listen({ port, host: '127.0.0.1' })
      t.teardown(() => app.close())
      await connectSimulator(sim!, base)
      return { base, sim: sim! }
    } catch (error) {
      await app.close()
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
}

/** A fresh browser context showing `base`; what left the server and every script error are collected. */
async function open (t: Test, base: string, viewport: { width: number, height: number }) {
  launched ??= chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: WAIT
  })
  const context = await (await launched).newContext({ viewport })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT)
  // Nothing but this server: the page must work offline (no CDN).
  const elsewhere: string[] = []
  page.on('request', (request) => { if (!request.url().startsWith(base)) elsewhere.push(request.url()) })
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(base)
  await page.waitForSelector('body[data-ready]')
  return { page, elsewhere, errors }
}

t.test('the playground: login → protected call → refresh → logout → removal', { skip: process.env.CI === 'true' ? false : missing }, async (t) => {
  const { base } = await serve(t)
  const { page, elsewhere, errors } = await open(t, base, { width: 1400, height: 1000 })

  t.match(await page.textContent('header'), 'local demo in simulator mode')
  const options = await page.$$eval('#member option', (nodes) => nodes.map((node) => node.textContent))
  t.match(options.join('\n'), /lisi.*outside the visible range/)
  t.match(options.join('\n'), /wangwu.*disabled/)
  await page.selectOption('#member', `${DEMO_CORP_ID}/zhangsan`)

  const top = await steps(page)
  const qy = await top('#qy-login', 'wx.qy.login as zhangsan')
  t.equal(qy.status, '200')
  t.match(qy.wecom, 'none', 'a code costs WeCom nothing')

  const login = await top('#login', 'Log in')
  t.equal(login.status, '200')
  t.match(login.wecom, /gettoken\s*0/)
  t.match(login.wecom, /jscode2session\s*0/)
  t.match(login.wecom, /user\/get\s*0/)
  t.match(login.jwt, '"userid": "zhangsan"', 'the JWT issued, decoded')
  t.match(await page.textContent('#state'), /access_token: ey/)

  const me = await top('#me', 'Protected route')
  t.equal(me.status, '200')
  t.match(me.exchange, '"userid": "zhangsan"')
  t.match(me.wecom, 'none', 'a JWT is checked without WeCom')
  // The README's picture: a login with its three WeCom calls, and the protected call after it.
  if (process.env.SCREENSHOT !== undefined) await page.screenshot({ path: process.env.SCREENSHOT })

  const refresh = await top('#refresh', 'Refresh')
  t.equal(refresh.status, '200')
  t.match(refresh.exchange, 'refresh_token')
  t.equal((await top('#me', 'Protected route')).status, '200', 'the refreshed token works')

  t.equal((await top('#logout', 'Log out')).status, '204')
  const afterLogout = await top('#me', 'Protected route')
  t.equal(afterLogout.status, '401')
  t.equal(afterLogout.code, 'WECOM_TOKEN_REVOKED')

  await top('#qy-login', 'wx.qy.login as zhangsan')
  t.equal((await top('#login', 'Log in')).status, '200', 'logged in again')
  const removal = await top('#remove', 'Admin: remove zhangsan')
  t.equal(removal.status, '200')
  t.match(removal.exchange, '"ChangeType": "delete_user"')
  t.match(removal.exchange, '"acknowledged": true')
  const afterRemoval = await top('#me', 'Protected route')
  t.equal(afterRemoval.code, 'WECOM_TOKEN_REVOKED', 'the off-boarding callback ended the session')
  t.equal((await top('#qy-login', 'wx.qy.login as zhangsan')).status, '404', 'WeCom gives a removed member no code')
  t.match(await page.textContent('#member'), 'zhangsan (removed)', 'the member list shows the directory as it is')
  t.equal((await top('#restore', 'Admin: restore zhangsan')).status, '200')
  t.notMatch(await page.textContent('#member'), 'removed')
  t.equal((await top('#qy-login', 'wx.qy.login as zhangsan')).status, '200', 'restored: a code again')

  t.same(elsewhere, [], 'no request left the server')
  t.same(errors, [], 'no script error')
})

t.test('the playground on a 390 px phone: nothing runs off the screen; slow WeCom calls show their ms; a refused login clears the tokens', { skip: process.env.CI === 'true' ? false : missing }, async (t) => {
  const { base, sim } = await serve(t)
  const { page, elsewhere, errors } = await open(t, base, { width: 390, height: 844 })
  const overflow = () => page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth)
  t.ok(await overflow() <= 0, 'no horizontal scroll on arrival')

  const top = await steps(page)
  await page.selectOption('#member', `${DEMO_CORP_ID}/zhangsan`)
  await top('#qy-login', 'wx.qy.login as zhangsan')
  // user/get answers one byte every 3 ms: some 100 bytes, so hundreds of ms however fast the box.
  sim.inject('user/get', { trickle: 3 })
  const login = await top('#login', 'Log in')
  t.equal(login.status, '200')
  const ms = await page.$$eval('#steps > .step:first-child table.wecom tr', (rows) =>
    Object.fromEntries((rows as HTMLTableRowElement[]).slice(1).map((row) => [row.cells[0].textContent, row.cells[2].textContent])))
  t.ok(Number(ms['user/get']) >= 100, `the trickled user/get shows its time: ${JSON.stringify(ms)}`)
  t.match(await page.textContent('#state'), /access_token: ey/)
  t.ok(await overflow() <= 0, 'a login\'s long tokens and its table stay within the screen')
  if (process.env.SCREENSHOT_PHONE !== undefined) await page.screenshot({ path: process.env.SCREENSHOT_PHONE, fullPage: true })

  await page.selectOption('#member', `${DEMO_CORP_ID}/lisi`)
  await top('#qy-login', 'wx.qy.login as lisi')
  const refused = await top('#login', 'Log in')
  t.equal(refused.status, '403')
  const state = await page.textContent('#state')
  t.match(state, 'access_token: (none)', 'zhangsan\'s tokens are gone from the device')
  t.match(state, 'refresh_token: (none)')
  t.equal((await top('#me', 'Protected route')).status, '401', 'and nothing is sent in his name')
  t.ok(await overflow() <= 0, 'still within the screen')

  t.same(elsewhere, [], 'no request left the server')
  t.same(errors, [], 'no script error')
})

t.test('the playground\'s service provider: a client corp installs the app, its member logs in through it, the corp uninstalls and the session dies', { skip: process.env.CI === 'true' ? false : missing }, async (t) => {
  const { base, sim } = await serve(t)
  const { page, elsewhere, errors } = await open(t, base, { width: 1400, height: 1000 })
  // Every answer the page was given, to look in for what it must never be shown.
  const answers: Array<Promise<string>> = []
  page.on('response', (response) => { answers.push(response.text().catch(() => '')) })
  t.match(await page.textContent('#provider'), `Corp ${DEMO_CLIENT_CORP_ID} installs`)
  t.match(await page.textContent('#installs'), '(no corp)')
  const top = await steps(page)
  const admin = (action: string) => `Admin of ${DEMO_CLIENT_CORP_ID}: ${action} the app`

  const install = await top('#suite-install', admin('install'))
  t.equal(install.status, '200')
  t.match(install.exchange, '"acknowledged": true')
  t.match(install.wecom, /service\/get_permanent_code\s*0/, 'the push\'s AuthCode exchanged at WeCom')
  t.match(await page.textContent('#installs'), `app installed in: ${DEMO_CLIENT_CORP_ID}`)
  const permanentCode = sim.permanentCode(DEMO_CLIENT_CORP_ID)

  t.equal((await top('#suite-code', 'wx.qy.login as sunqi')).status, '200')
  const login = await top('#suite-login', 'Log in through the app')
  t.equal(login.status, '200', 'logged in through the app')
  t.match(login.exchange, `"suiteId": "${DEMO_SUITE.suiteId}"`, 'the login names the suite')
  t.match(login.wecom, /service\/miniprogram\/jscode2session\s*0/)
  t.match(login.jwt, `"suite": "${DEMO_SUITE.suiteId}"`)
  const me = await top('#suite-me', 'Protected route')
  t.equal(me.status, '200')
  t.match(me.exchange, `"corpid": "${DEMO_CLIENT_CORP_ID}"`)
  t.match(me.exchange, `"suiteId": "${DEMO_SUITE.suiteId}"`, 'the session is the suite\'s')

  const uninstall = await top('#suite-uninstall', admin('uninstall'))
  t.equal(uninstall.status, '200')
  t.match(uninstall.exchange, '"acknowledged": true')
  t.match(await page.textContent('#installs'), '(no corp)')
  const dead = await top('#suite-me', 'Protected route')
  t.equal(dead.status, '401')
  t.equal(dead.code, 'WECOM_TOKEN_REVOKED', 'the very next request is refused')
  await top('#suite-code', 'wx.qy.login as sunqi')
  const refused = await top('#suite-login', 'Log in through the app')
  t.equal(refused.status, '403')
  t.equal(refused.code, 'WECOM_CORP_NOT_ALLOWED', 'and the corp\'s logins')
  t.match(await page.textContent('#state'), 'access_token: (none)')

  // WeCom's secrets, tickets and tokens of the story: in no answer the page got, nor on the page.
  const seen = [...await Promise.all(answers), await page.content()].join('\n')
  const credentials = sim.requests.flatMap(({ query }) => Object.entries(query).filter(([name]) => /secret|token|ticket/.test(name)).map(([, value]) => value))
  const tickets = sim.suiteTickets(DEMO_SUITE.suiteId).map(({ ticket }) => ticket)
  t.ok(permanentCode !== undefined && tickets.length > 0 && credentials.length > 0, 'there were some to look for')
  const shown = [permanentCode!, DEMO_SUITE.secret, ...tickets, ...credentials].filter((secret) => seen.includes(secret))
  t.same(shown, [], 'no permanent code, suite secret, suite_ticket or WeCom token shown')
  t.same(elsewhere, [], 'no request left the server')
  t.same(errors, [], 'no script error')
})

interface Step { title: string, status: string, code?: string, exchange: string, wecom: string, jwt: string }

/** Clicks a button and reads the step card it adds on top, once its title is there. */
async function steps (page: Page) {
  let count = 0
  return async (button: string, title: string): Promise<Step> => {
    await page.click(button)
    count += 1
    await page.waitForFunction((n) => document.querySelectorAll('#steps > .step').length === n && document.body.dataset.busy === undefined, count)
    return page.$eval('#steps > .step', (card) => ({
      title: (card as HTMLElement).dataset.title ?? '',
      status: (card as HTMLElement).dataset.status ?? '',
      code: (card as HTMLElement).dataset.code,
      exchange: card.querySelector('.exchange')?.textContent ?? '',
      wecom: card.querySelector('.wecom')?.textContent ?? '',
      jwt: card.querySelector('.jwt')?.textContent ?? ''
    })).then((step) => {
      if (step.title !== title) throw new Error(`expected the step "${title}", the page shows "${step.title}"`)
      return step
    })
  }
}

t.test('the three surfaces in Chromium: a page inside WeCom, the PC browser and the mini program, one session list, one off-boarding', { skip: process.env.CI === 'true' ? false : missing }, async (t) => {
  const { base, sim } = await serveOnChosenPort(t)

  // Two browser contexts (two cookie jars, as two browsers have): WeCom's in-app browser and a PC browser.
  const inside = await open(t, `${base}/web`, { width: 390, height: 844 })
  const pc = await open(t, `${base}/web`, { width: 1400, height: 1000 })
  t.match(await inside.page.textContent('#me'), 'not signed in')

  // Inside WeCom: OAuth2's page (the simulator's), the member picked, back on the page signed in.
  await inside.page.click('#login-oauth')
  await inside.page.click('a:has-text("zhangsan")')
  await inside.page.waitForSelector('#me[data-status="200"]')
  t.match(await inside.page.textContent('#me'), '"userid":"zhangsan"')
  const cookies = await inside.page.context().cookies(base)
  t.match(cookies.find((cookie) => cookie.name === 'wecom_access'), { httpOnly: true, sameSite: 'Lax' })

  // The PC browser: WeCom's login page, the same member.
  await pc.page.click('#login-sso')
  await pc.page.click('a:has-text("zhangsan")')
  await pc.page.waitForSelector('#me[data-status="200"]')

  // The mini program's login, by the API, for the same member.
  const code = sim.issueCode(DEMO_CORP_ID, 'zhangsan')
  const mini = await (await fetch(`${base}/wecom/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })).json() as { access_token: string }
  const me = () => fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${mini.access_token}` } }).then((res) => res.status)
  t.equal(await me(), 200)

  // One list, seen from the page inside WeCom: its own session and the two others.
  await inside.page.reload()
  await inside.page.waitForSelector('#sessions li[data-surface="miniprogram"]')
  const surfaces = await inside.page.$$eval('#sessions li', (items) => items.map((item) => (item as HTMLElement).dataset.surface))
  t.same(surfaces, ['h5', 'web', 'miniprogram'])

  // The JS-SDK signature of the page, checked as WeCom checks it.
  await inside.page.click('#sign')
  await inside.page.waitForFunction(() => document.querySelector('#signature')?.textContent !== '')
  const signed = JSON.parse((await inside.page.textContent('#signature'))!) as { config: { timestamp: number, nonceStr: string, signature: string } }
  t.equal(signed.config.signature, jsapiSignature(sim.jsapiTicket(DEMO_CORP_ID)!, signed.config.nonceStr, signed.config.timestamp, `${base}/web`))

  // The page inside WeCom ends the PC browser's session.
  await inside.page.click('#sessions li[data-surface="web"] button.end')
  await inside.page.waitForFunction(() => document.querySelectorAll('#sessions li').length === 2)
  await pc.page.reload()
  await pc.page.waitForSelector('#me[data-status="401"]')
  t.pass('the PC browser is signed out')

  // Off-boarding: zhangsan removed in "WeCom" ends the others, every surface.
  await fetch(`${base}/dev/remove?userid=zhangsan`, { method: 'POST' })
  t.equal(await me(), 401, 'the mini program is signed out')
  await inside.page.reload()
  await inside.page.waitForSelector('#me[data-status="401"]')
  t.pass('the page inside WeCom is signed out')
  t.same([...inside.errors, ...pc.errors], [], 'no script error')
})
