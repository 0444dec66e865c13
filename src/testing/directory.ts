/**
 * The simulator's contact directory: its corps, their members, and what WeCom keeps per corp
 * beside them (each member's latest session_key, the AgentID, the callback settings, the web apps
 * and the outsiders who may open their pages).
 */
import type { SimulatedCallback } from './envelope.js'
import { SimulatorNotFoundError } from './errors.js'

export interface SimulatedMember {
  userid: string
  name?: string
  department?: number[]
  position?: string
  /** 1 active (default), 2 disabled, 4 not activated, 5 left */
  status?: number
  /** Inside the app's visible range (default true); false makes user/get answer 60011. */
  visible?: boolean
  /** Never returned by user/get, like an app created after 2022-06-20. */
  mobile?: string
  /** Never returned by user/get, like an app created after 2022-06-20. */
  email?: string
  /** '0' unknown, '1' male, '2' female: a string, as getuserdetail answers it. Only from getuserdetail. */
  gender?: '0' | '1' | '2'
  /** A URL. Only from getuserdetail, like the fields below. */
  avatar?: string
  /** A URL of the member's contact QR code. */
  qr_code?: string
  /** The corp mailbox. */
  biz_mail?: string
  address?: string
}

/**
 * A self-built app whose pages open inside WeCom (OAuth2) or in a PC browser (web login), with a
 * secret of its own: gettoken with it gives this app's token, which alone redeems its codes.
 */
export interface SimulatedWebApp {
  /** The AgentID pages pass as `agentid`; not the corp's `agentId` (the mini program's app). */
  agentId: number
  /** Distinct from the corp's secret and from the other apps'. */
  secret: string
  /**
   * Hosts WeCom redirects to, port included as in a URL's host: ['127.0.0.1:3000', 'app.example.com'].
   * A redirect_uri on another host gets the errcode 50001 page. Compared case-insensitively.
   */
  trustedDomains: string[]
}

/**
 * Someone who may open the corp's pages without being a member (a WeChat user, a member of another
 * corp): getuserinfo answers their openid, never a userid.
 */
export interface SimulatedOutsider {
  openid: string
  /** The external contact id, when the outsider is one of the corp's external contacts. */
  externalUserid?: string
  /** Shown on the member picker only. */
  name?: string
}

export interface SimulatedCorp {
  corpId: string
  secret: string
  members?: SimulatedMember[]
  /** Checked (GET) before the first event is sent, as WeCom checks it when the admin saves it. */
  callback?: SimulatedCallback
  /** The AgentID events carry (the mini program's app, whose secret is `secret`). Default 1000002. */
  agentId?: number
  /** The corp's web apps. A member's `visible` stands for every app's visible range. */
  webApps?: SimulatedWebApp[]
  /** Non-members who can open the corp's pages inside WeCom (OAuth2); the PC web login lists members only. */
  outsiders?: SimulatedOutsider[]
}

export const DEFAULT_AGENT_ID = 1000002

export interface CorpState {
  secret: string
  members: Map<string, SimulatedMember>
  sessionKeys: Map<string, string>
  agentId: number
  /** Keyed by AgentID; trusted domains lower case. */
  webApps: Map<number, { secret: string, trustedDomains: Set<string> }>
  outsiders: Map<string, SimulatedOutsider>
  /** `checked` once the URL passed WeCom's check; until then the next event checks it first. */
  callback?: { config: SimulatedCallback, checked: boolean }
}

function copyMember (member: SimulatedMember): SimulatedMember {
  if (typeof member.userid !== 'string' || member.userid === '') {
    throw new Error('a simulated member needs a non-empty userid')
  }
  return { ...member, department: member.department ? [...member.department] : undefined }
}

function webAppsOf (corp: SimulatedCorp): CorpState['webApps'] {
  const apps: CorpState['webApps'] = new Map()
  const secrets = new Set([corp.secret])
  for (const app of corp.webApps ?? []) {
    if (!Number.isInteger(app.agentId) || apps.has(app.agentId) || app.agentId === (corp.agentId ?? DEFAULT_AGENT_ID)) throw new Error('a simulated web app needs an integer agentId of its own')
    // gettoken tells the apps apart by their secret alone.
    if (typeof app.secret !== 'string' || app.secret === '' || secrets.has(app.secret)) {
      throw new Error(`simulated web app ${app.agentId} needs a non-empty secret of its own`)
    }
    secrets.add(app.secret)
    if (!Array.isArray(app.trustedDomains)) throw new Error(`simulated web app ${app.agentId} needs trustedDomains (an array of hosts)`)
    apps.set(app.agentId, { secret: app.secret, trustedDomains: new Set(app.trustedDomains.map((domain) => domain.toLowerCase())) })
  }
  return apps
}

export class Directory {
  private readonly corps = new Map<string, CorpState>()

  /** Adds a corp, or replaces one already there (its session_keys and callback check with it). */
  add (corp: SimulatedCorp): void {
    if (typeof corp.corpId !== 'string' || corp.corpId === '') {
      throw new Error('a simulated corp needs a non-empty corpId')
    }
    const members = new Map<string, SimulatedMember>()
    for (const member of corp.members ?? []) members.set(member.userid, copyMember(member))
    this.corps.set(corp.corpId, {
      secret: corp.secret,
      members,
      sessionKeys: new Map(),
      agentId: corp.agentId ?? DEFAULT_AGENT_ID,
      webApps: webAppsOf(corp),
      outsiders: new Map((corp.outsiders ?? []).map((outsider) => [outsider.openid, { ...outsider }])),
      callback: corp.callback === undefined ? undefined : { config: { ...corp.callback }, checked: false }
    })
  }

  /** Every corp's id, in the order added. */
  corpIds (): string[] {
    return [...this.corps.keys()]
  }

  /** The corp, or undefined: for WeCom's endpoints, which answer an errcode rather than throw. */
  find (corpId: string): CorpState | undefined {
    return this.corps.get(corpId)
  }

  /** @throws SimulatorNotFoundError for an unknown corp */
  corp (corpId: string): CorpState {
    const corp = this.corps.get(corpId)
    if (!corp) throw new SimulatorNotFoundError(`unknown corp ${JSON.stringify(corpId)}`)
    return corp
  }

  /** The AgentID of the corp's app with this secret (the mini program's or a web app's), or undefined. */
  appOf (corp: CorpState, secret: string): number | undefined {
    if (corp.secret === secret) return corp.agentId
    for (const [agentId, app] of corp.webApps) {
      if (app.secret === secret) return agentId
    }
    return undefined
  }

  /** @throws SimulatorNotFoundError for an unknown corp, or an AgentID that is none of its apps */
  agent (corpId: string, agentId: number): void {
    const corp = this.corp(corpId)
    if (agentId !== corp.agentId && !corp.webApps.has(agentId)) {
      throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has no app ${agentId}`)
    }
  }

  /** @throws SimulatorNotFoundError for an unknown corp or member */
  member (corpId: string, userid: string): SimulatedMember {
    const member = this.corp(corpId).members.get(userid)
    if (!member) {
      throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has no member ${JSON.stringify(userid)}`)
    }
    return member
  }

  /** @throws SimulatorNotFoundError for an unknown corp or outsider */
  outsider (corpId: string, openid: string): SimulatedOutsider {
    const outsider = this.corp(corpId).outsiders.get(openid)
    if (!outsider) {
      throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has no outsider ${JSON.stringify(openid)}`)
    }
    return outsider
  }

  /** Copies of the corp's members, in the order they were added. */
  members (corpId: string): SimulatedMember[] {
    return [...this.corp(corpId).members.values()].map(copyMember)
  }

  set (corpId: string, member: SimulatedMember): void {
    this.corp(corpId).members.set(member.userid, copyMember(member))
  }

  update (corpId: string, userid: string, patch: Partial<SimulatedMember>): void {
    const member = this.member(corpId, userid)
    if (patch.userid !== undefined && patch.userid !== userid) {
      throw new Error('updateMember cannot change a userid: remove the member and set a new one')
    }
    this.corp(corpId).members.set(userid, copyMember({ ...member, ...patch, userid }))
  }

  /** The member and the session_key of its latest code go; a later setMember starts afresh. */
  remove (corpId: string, userid: string): void {
    this.member(corpId, userid)
    const corp = this.corp(corpId)
    corp.members.delete(userid)
    corp.sessionKeys.delete(userid)
  }
}
