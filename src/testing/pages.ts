/**
 * WeCom's pages, served on the simulator's own origin so that it stands in for them as for the
 * API: the OAuth2 authorize page a page inside WeCom is sent to (open.weixin.qq.com), and the PC
 * browser's web login (login.work.weixin.qq.com). Without `userid` (or an outsider's `openid`) a
 * page lists who may open it, each a link; with one it redirects at once, as WeCom does once the
 * member agreed or scanned: a 302 to `redirect_uri?code=CODE&state=STATE`. What WeCom refuses
 * it shows as an HTML page naming the errcode, with no redirect.
 */
import type { ServerResponse } from 'node:http'
import type { EndpointContext } from './context.js'
import type { CorpState } from './directory.js'
import type { SimulatedSuite } from './suite-pushes.js'
import type { WebScope, WebVisitor } from './web-logins.js'

export const AUTHORIZE_PATH = '/connect/oauth2/authorize'
export const SSO_PATH = '/wwlogin/sso/login'

/** A redirect (the page's outcome), or HTML: the picker or an error page. */
type PageAnswer = { redirect: string } | { html: string }
type Query = Record<string, string>

/** WeCom returns `state` as given, up to 128 bytes. */
const MAX_STATE_BYTES = 128

interface Visit {
  corpId: string
  corp: CorpState
  scope: WebScope
  /** Outsiders may open pages inside WeCom; the PC web login of a corp app is for members. */
  outsiders: boolean
  title: string
  /** A third-party suite's page (appid the SuiteID), its code for getuserinfo3rd. */
  suite?: SimulatedSuite
}

function escape (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page (title: string, body: string): { html: string } {
  return { html: `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>\n<body>\n${body}\n</body></html>\n` }
}

function refused (errcode: number, why: string): PageAnswer {
  return page(`errcode ${errcode}`, `<h1>errcode ${errcode}</h1>\n<p>${escape(why)}</p>`)
}

/** The people of the corp who may open the page, each a link to the same page naming them. */
function picker (query: Query, visit: Visit): PageAnswer {
  const link = (name: 'userid' | 'openid', id: string, label: string) =>
    `<li><a href="?${escape(new URLSearchParams({ ...query, [name]: id }).toString())}">${escape(label)}</a></li>`
  const members = [...visit.corp.members.values()].map(({ userid, name, visible }) =>
    link('userid', userid, `${name ?? userid} (${userid})${visible === false ? ', outside the visible range' : ''}`))
  const outsiders = visit.outsiders
    ? [...visit.corp.outsiders.values()].map(({ openid, name }) => link('openid', openid, `${name ?? openid} (openid ${openid})`))
    : []
  return page(`${visit.title} (simulated)`, [
    `<h1>${escape(visit.title)}</h1>`,
    `<p>The WeCom simulator stands in for WeCom: pick who opens the page of corp ${escape(visit.corpId)}.</p>`,
    `<h2>Members</h2>\n<ul>\n${members.join('\n')}\n</ul>`,
    outsiders.length > 0 ? `<h2>Not members</h2>\n<ul>\n${outsiders.join('\n')}\n</ul>` : '',
  ].join('\n'))
}

/**
 * The redirect's host must be a trusted domain of the page's app, or of any web app of the corp
 * when it names none; a suite's page, of the suite (any when the suite lists none).
 */
function trusted (visit: Visit, agentId: number | undefined, redirect: URL): boolean {
  if (visit.suite !== undefined) return visit.suite.trustedDomains?.includes(redirect.host) ?? true
  const apps = agentId === undefined ? [...visit.corp.webApps.values()] : [visit.corp.webApps.get(agentId)!]
  return apps.some((app) => app.trustedDomains.has(redirect.host))
}

/** A suite's page opened without `corpid`: WeCom knows the visitor's corp, the simulator asks for it. */
function corpPicker (query: Query, corpIds: readonly string[], title: string): PageAnswer {
  const links = corpIds.map((corpId) => `<li><a href="?${escape(new URLSearchParams({ ...query, corpid: corpId }).toString())}">${escape(corpId)}</a></li>`)
  return page(`${title} (simulated)`, [
    `<h1>${escape(title)}</h1>`,
    '<p>The WeCom simulator stands in for WeCom: pick the corp whose WeCom opens the suite\'s page.</p>',
    `<h2>Corps</h2>\n<ul>\n${links.join('\n')}\n</ul>`
  ].join('\n'))
}

/**
 * A third-party suite's page (appid the SuiteID, no agentid: doc path/91120, path/98176): the
 * visitor's corp is the one their WeCom is signed in to, which `corpid` names here.
 */
function suitePage (context: EndpointContext, query: Query, suite: SimulatedSuite, visit: Pick<Visit, 'scope' | 'outsiders' | 'title'>): PageAnswer {
  if (query.agentid !== undefined) return refused(40058, 'a third-party suite\'s page takes no agentid')
  if (query.corpid === undefined) return corpPicker(query, context.directory.corpIds(), visit.title)
  const corp = context.directory.find(query.corpid)
  if (corp === undefined) return refused(40013, 'invalid corpid: no corp of the simulator')
  return open(context, query, { ...visit, corpId: query.corpid, corp, suite })
}

/** The suite a page's appid names when it is a third-party suite's SuiteID. */
function thirdParty (context: EndpointContext, appid: string | undefined): SimulatedSuite | undefined {
  const suite = appid === undefined ? undefined : context.suites.suite(appid)
  return suite?.kind === 'custom' ? undefined : suite
}

function parseRedirect (raw: string | undefined): URL | undefined {
  if (raw === undefined || !URL.canParse(raw)) return undefined
  const url = new URL(raw)
  return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
}

/** What both pages do once their own parameters are checked. */
function open (context: EndpointContext, query: Query, given: Visit): PageAnswer {
  // A third-party suite's page took no agentid (suitePage).
  const agentId = query.agentid === undefined ? undefined : Number(query.agentid)
  // A 代开发 app's pages are the corp's own (appid the CorpID, agentid its app in the corp), trusting the suite's domains.
  const install = agentId === undefined ? undefined : context.installs.byAgent(given.corpId, agentId)
  const visit = install === undefined ? given : { ...given, suite: context.suites.suite(install.suiteId) }
  if (agentId !== undefined && install === undefined && !visit.corp.webApps.has(agentId)) return refused(40056, `agentid ${query.agentid} is no web app of the corp`)
  const state = query.state ?? ''
  if (Buffer.byteLength(state) > MAX_STATE_BYTES) return refused(40058, `state is over ${MAX_STATE_BYTES} bytes`)
  const redirect = parseRedirect(query.redirect_uri)
  if (redirect === undefined || !trusted(visit, agentId, redirect)) {
    return refused(50001, `redirect_uri not trusted: its host is not a trusted domain of ${visit.suite !== undefined ? 'the suite' : agentId === undefined ? 'any web app of the corp' : `app ${agentId}`}`)
  }
  let visitor: WebVisitor
  if (query.userid !== undefined) {
    if (!visit.corp.members.has(query.userid)) return refused(60111, 'userid not found')
    visitor = { userid: query.userid }
  } else if (visit.outsiders && query.openid !== undefined) {
    if (!visit.corp.outsiders.has(query.openid)) return refused(40058, 'openid is none of the corp\'s outsiders')
    visitor = { openid: query.openid }
  } else {
    return picker(query, visit)
  }
  // A 代开发 app's code is the corp app's, for auth/getuserinfo on its token; a third-party suite's, the suite's.
  redirect.searchParams.set('code', context.web.issueCode({ corpId: visit.corpId, agentId, visitor, scope: visit.scope, suiteId: given.suite?.suiteId }))
  redirect.searchParams.set('state', state)
  return { redirect: redirect.href }
}

/** open.weixin.qq.com/connect/oauth2/authorize: appid, redirect_uri, response_type=code, scope, state, agentid. */
function authorize (context: EndpointContext, query: Query): PageAnswer {
  if (query.response_type !== 'code') return refused(40058, 'response_type must be code')
  const scope = query.scope
  if (scope !== 'snsapi_base' && scope !== 'snsapi_privateinfo') return refused(40058, 'scope must be snsapi_base or snsapi_privateinfo')
  const visit = { scope: scope as WebScope, outsiders: true, title: 'WeCom authorization' }
  const suite = thirdParty(context, query.appid)
  if (suite !== undefined) return suitePage(context, query, suite, visit)
  const corp = context.directory.find(query.appid ?? '')
  if (corp === undefined) return refused(40013, 'invalid appid: no corp or third-party suite of the simulator')
  if (scope === 'snsapi_privateinfo' && query.agentid === undefined) return refused(40058, 'agentid is required with snsapi_privateinfo')
  return open(context, query, { ...visit, corpId: query.appid!, corp })
}

/**
 * login.work.weixin.qq.com/wwlogin/sso/login: login_type=CorpApp, appid (the CorpID), agentid; or
 * login_type=ServiceApp, appid (a third-party suite's SuiteID); redirect_uri, state, lang.
 */
function sso (context: EndpointContext, query: Query): PageAnswer {
  // The code of a web login names the member only, like snsapi_base.
  const visit = { scope: 'snsapi_base' as const, outsiders: false, title: 'WeCom QR login' }
  if (query.login_type === 'ServiceApp') {
    const suite = thirdParty(context, query.appid)
    return suite === undefined ? refused(40013, 'invalid appid: no third-party suite of the simulator') : suitePage(context, query, suite, visit)
  }
  if (query.login_type !== 'CorpApp') return refused(40058, 'login_type must be CorpApp or ServiceApp')
  const corp = context.directory.find(query.appid ?? '')
  if (corp === undefined) return refused(40013, 'invalid appid: no corp of the simulator')
  if (query.agentid === undefined) return refused(40058, 'agentid is required')
  return open(context, query, { ...visit, corpId: query.appid!, corp })
}

export const PAGES: ReadonlyMap<string, (context: EndpointContext, query: Query) => PageAnswer> = new Map([
  [AUTHORIZE_PATH, authorize],
  [SSO_PATH, sso],
])

/** A 302 for a redirect, else the HTML with status 200, as WeCom shows its error pages; never cached. */
export function writePage (res: ServerResponse, answer: PageAnswer): void {
  if (res.destroyed) return
  if ('redirect' in answer) {
    res.writeHead(302, { location: answer.redirect, 'cache-control': 'no-store' }).end()
    return
  }
  const body = Buffer.from(answer.html)
  res.writeHead(200, { 'content-type': 'text/html; charset=UTF-8', 'content-length': body.length, 'cache-control': 'no-store' }).end(body)
}
