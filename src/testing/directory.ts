/**
 * The simulator's contact directory: its corps, their members, and what WeCom keeps per corp
 * beside them (each member's latest session_key, the AgentID, the callback settings).
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
}

export interface SimulatedCorp {
  corpId: string
  secret: string
  members?: SimulatedMember[]
  /** Checked (GET) before the first event is sent, as WeCom checks it when the admin saves it. */
  callback?: SimulatedCallback
  /** The AgentID events carry. Default 1000002. */
  agentId?: number
}

export const DEFAULT_AGENT_ID = 1000002

export interface CorpState {
  secret: string
  members: Map<string, SimulatedMember>
  sessionKeys: Map<string, string>
  agentId: number
  /** `checked` once the URL passed WeCom's check; until then the next event checks it first. */
  callback?: { config: SimulatedCallback, checked: boolean }
}

function copyMember (member: SimulatedMember): SimulatedMember {
  if (typeof member.userid !== 'string' || member.userid === '') {
    throw new Error('a simulated member needs a non-empty userid')
  }
  return { ...member, department: member.department ? [...member.department] : undefined }
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
      callback: corp.callback === undefined ? undefined : { config: { ...corp.callback }, checked: false }
    })
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

  /** @throws SimulatorNotFoundError for an unknown corp or member */
  member (corpId: string, userid: string): SimulatedMember {
    const member = this.corp(corpId).members.get(userid)
    if (!member) {
      throw new SimulatorNotFoundError(`corp ${JSON.stringify(corpId)} has no member ${JSON.stringify(userid)}`)
    }
    return member
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
