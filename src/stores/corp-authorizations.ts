import type { CorpAuthorization, CorpAuthorizationStore } from './store.js'

/** The corps that installed each suite, in one process: an entry holds the sealed code, never the clear one. */
export class MemoryCorpAuthorizations implements CorpAuthorizationStore {
  readonly #suites = new Map<string, Map<string, CorpAuthorization>>()

  async save (authorization: CorpAuthorization): Promise<void> {
    let corps = this.#suites.get(authorization.suiteId)
    if (corps === undefined) this.#suites.set(authorization.suiteId, corps = new Map())
    corps.set(authorization.corpId, { ...authorization, agentIds: [...authorization.agentIds] })
  }

  async get (suiteId: string, corpId: string): Promise<CorpAuthorization | null> {
    const kept = this.#suites.get(suiteId)?.get(corpId)
    return kept === undefined ? null : Object.assign({}, kept, { agentIds: [...kept.agentIds] })
  }

  async remove (suiteId: string, corpId: string): Promise<void> {
    this.#suites.get(suiteId)?.delete(corpId)
  }

  async list (suiteId: string): Promise<CorpAuthorization[]> {
    return [...this.#suites.get(suiteId)?.values() ?? []].map((kept) => ({ ...kept, agentIds: [...kept.agentIds] }))
  }
}
