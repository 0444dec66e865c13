import { SharedStoreError, type CachedToken, type SharedTokenStore } from '../../src/wecom/credentials.js'

/** A SharedTokenStore in memory, as Redis keeps it for every instance: a lock per key, a switch to fail it. */
export class FakeShared implements SharedTokenStore {
  values = new Map<string, CachedToken>()
  down = false
  locks = 0
  #check () { if (this.down) throw new SharedStoreError(new Error('ECONNREFUSED')) }
  async read (key: string) { this.#check(); return this.values.get(key) ?? null }
  async write (key: string, token: CachedToken) { this.#check(); this.values.set(key, token) }
  async compareAndDelete (key: string, value: string) { this.#check(); if (this.values.get(key)?.value === value) this.values.delete(key) }
  /** One lock per key, as in Redis: a ticket's fetch takes the access token's lock while holding its own. */
  #held = new Map<string, Promise<unknown>>()
  async withLock<T> (key: string, fn: () => Promise<T>) {
    this.#check()
    this.locks++
    const run = (this.#held.get(key) ?? Promise.resolve()).then(fn)
    this.#held.set(key, run.catch(() => {}))
    return run
  }
}
