import type { CorpAuthorization, CorpAuthorizationStore } from '../store.js'
import type { Run } from './connection.js'
import { redisKeys } from './keys.js'

/** The corps that installed each suite: a hash per suite, a field per corp, the permanent code sealed. */
export class RedisCorpAuthorizations implements CorpAuthorizationStore {
  readonly #run: Run
  readonly #prefix: string

  constructor (run: Run, prefix: string) {
    this.#run = run
    this.#prefix = prefix
  }

  async save (authorization: CorpAuthorization): Promise<void> {
    await this.#run((client) => client.hset(redisKeys.suiteCorps(this.#prefix, authorization.suiteId), authorization.corpId, JSON.stringify(authorization)))
  }

  async get (suiteId: string, corpId: string): Promise<CorpAuthorization | null> {
    return parsed(await this.#run((client) => client.hget(redisKeys.suiteCorps(this.#prefix, suiteId), corpId)))
  }

  async remove (suiteId: string, corpId: string): Promise<void> {
    await this.#run((client) => client.hdel(redisKeys.suiteCorps(this.#prefix, suiteId), corpId))
  }

  async list (suiteId: string): Promise<CorpAuthorization[]> {
    const all = await this.#run((client) => client.hvals(redisKeys.suiteCorps(this.#prefix, suiteId)))
    return all.flatMap((raw) => parsed(raw) ?? [])
  }
}

/** An entry as saved; null for none, or for one that is not (a key written by something else). */
function parsed (raw: string | null | undefined): CorpAuthorization | null {
  if (typeof raw !== 'string') return null
  try {
    const entry = JSON.parse(raw) as CorpAuthorization
    return typeof entry.corpId === 'string' && typeof entry.sealedCode === 'string' && Array.isArray(entry.agentIds) ? entry : null
  } catch {
    return null
  }
}
