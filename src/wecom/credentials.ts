import { createHash } from 'node:crypto'

/**
 * An app's credentials: its corp and secret. For a corp that installed a suite, `secret` is the
 * corp's permanent code, and `suite` the third-party suite whose token fetches the corp's
 * (get_corp_token); a 代开发 app's corp token comes from gettoken with the code, like a secret.
 */
export interface CorpCredentials { corpId: string, secret: string, suite?: CorpCredentials }

/** What gettoken answered: the token and its life in seconds. */
export interface AccessToken { accessToken: string, expiresIn: number }

/** What WeCom answered for a credential (an access token, a JS-SDK ticket): its value and life in seconds. */
export interface FetchedCredential { value: string, expiresIn: number }

/**
 * The credentials cached beside an app's access token: the JS-SDK tickets its token fetches (doc
 * path/90506), the corp's (`jsapi_ticket`, for wx.config / ww.register) and the app's
 * (`agent_ticket`, for agentConfig); and a suite's own token (`suite_access_token`, doc path/90600).
 */
export type TicketKind = 'jsapi_ticket' | 'agent_ticket'
export type CredentialKind = TicketKind | 'suite_access_token'

/** A token or ticket, the epoch ms at which WeCom says it ends, and when it was asked for. */
export interface CachedToken { value: string, expiresAt: number, fetchedAt: number }

/**
 * Where tokens are shared between processes (Redis). Every method may reject when the store is
 * down; the cache then falls back to its own process-local token.
 */
export interface SharedTokenStore {
  read (key: string): Promise<CachedToken | null>
  write (key: string, token: CachedToken): Promise<void>
  /** Deletes the token only if the store still holds `value`: never another process's fresh token. */
  compareAndDelete (key: string, value: string): Promise<void>
  /** Runs `fn` holding the cross-process refresh lock of `key`, waiting for it when another holds it. */
  withLock<T> (key: string, fn: () => Promise<T>): Promise<T>
}

export interface CredentialCacheOptions {
  /** What is cached: a ticket, or a suite's token; none for an app's access token. */
  kind?: CredentialKind
  fetch: (corp: CorpCredentials) => Promise<FetchedCredential>
  shared?: SharedTokenStore
  now?: () => number
  /** Told once per outage when the shared store fails; the cache keeps working locally. */
  onSharedStoreDown?: (error: unknown) => void
  onSharedStoreUp?: () => void
  onBackgroundRefreshError?: (error: unknown) => void
}

interface Entry {
  token: CachedToken
  /** After this, serve the token but refresh it in the background (at most once per token). */
  aheadAt: number
  /** After this, the token is not used: callers wait for a fresh one. */
  staleAt: number
}

const keys = new WeakMap<CorpCredentials, string>()

/**
 * A cache key per (corpId, secret): two apps of one corp have two tokens. Computed once per
 * credentials object, since every login asks for it.
 */
export function tokenKey (corp: CorpCredentials): string {
  let key = keys.get(corp)
  if (key === undefined) {
    key = `${corp.corpId}:${createHash('sha256').update(corp.secret).digest('hex').slice(0, 16)}`
    keys.set(corp, key)
  }
  return key
}

/**
 * The shared store's key of a credential of `corp`: its access token's is tokenKey(corp), a
 * ticket's that key and the ticket's kind. A token key ends in 16 hex digits, which no kind is,
 * so that a ticket's key is never a token's, whatever the corpId.
 */
export function credentialKey (corp: CorpCredentials, kind: CredentialKind | undefined): string {
  return kind === undefined ? tokenKey(corp) : `${tokenKey(corp)}:${kind}`
}

/**
 * An app's credential (its access token, or a JS-SDK ticket) per app, refreshed ahead of expiry,
 * with single-flight: any number of concurrent callers on a cold cache share one fetch per app
 * (and, with a shared store, per cluster).
 */
export class CredentialCache {
  readonly #entries = new Map<string, Entry>()
  readonly #inflight = new Map<string, Promise<CachedToken>>()
  // The key of each credentials object, built once: a string built per call is hashed per call,
  // and the JS-SDK signature route asks for two tickets on every request.
  readonly #keys = new WeakMap<CorpCredentials, string>()
  readonly #options: CredentialCacheOptions
  readonly #now: () => number
  #sharedDown = false

  constructor (options: CredentialCacheOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  async get (corp: CorpCredentials): Promise<string> {
    return this.cached(corp) ?? (await this.#refresh(this.#keyOf(corp), corp)).value
  }

  #keyOf (corp: CorpCredentials): string {
    let key = this.#keys.get(corp)
    if (key === undefined) {
      key = credentialKey(corp, this.#options.kind)
      this.#keys.set(corp, key)
    }
    return key
  }

  /**
   * The value while it is fresh, at once (and the refresh ahead of expiry started, as `get` does);
   * undefined when only a fetch could give one. For a hot path that need not wait for anything.
   */
  cached (corp: CorpCredentials): string | undefined {
    const key = this.#keyOf(corp)
    const entry = this.#entries.get(key)
    const now = this.#now()
    if (entry === undefined || now >= entry.staleAt) return undefined
    if (now >= entry.aheadAt && !this.#inflight.has(key)) {
      entry.aheadAt = Infinity
      this.#refresh(key, corp, entry.token.value).catch(this.#options.onBackgroundRefreshError ?? noop)
    }
    return entry.token.value
  }

  /** Forgets `failed` (here and in the shared store) unless a newer token already replaced it. */
  async drop (corp: CorpCredentials, failed: string): Promise<void> {
    const key = this.#keyOf(corp)
    if (this.#entries.get(key)?.token.value === failed) this.#entries.delete(key)
    const shared = this.#options.shared
    if (shared !== undefined) {
      await this.#shared(() => shared.compareAndDelete(key, failed), undefined)
    }
  }

  /** Forgets whatever is cached for `corp`, here and in the shared store: it must serve no call again. */
  async forget (corp: CorpCredentials): Promise<void> {
    const key = this.#keyOf(corp)
    const local = this.#entries.get(key)?.token.value
    this.#entries.delete(key)
    const shared = this.#options.shared
    if (shared === undefined) return
    const known = await this.#shared(() => shared.read(key), null)
    for (const value of new Set([local, known?.value])) {
      if (value !== undefined) await this.#shared(() => shared.compareAndDelete(key, value), undefined)
    }
  }

  #refresh (key: string, corp: CorpCredentials, current?: string): Promise<CachedToken> {
    let pending = this.#inflight.get(key)
    if (pending === undefined) {
      pending = this.#load(key, corp, current).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, pending)
    }
    return pending
  }

  async #load (key: string, corp: CorpCredentials, current: string | undefined): Promise<CachedToken> {
    const shared = this.#options.shared
    const token = shared === undefined
      ? await this.#fetch(corp)
      : await this.#loadShared(shared, key, corp, current)
    this.#remember(key, token, current)
    return token
  }

  async #loadShared (shared: SharedTokenStore, key: string, corp: CorpCredentials, current: string | undefined): Promise<CachedToken> {
    // Replacing `current`, a token is good if it is another one, or the same one asked for again
    // by another process since this refresh began: WeCom hands back the same token until it
    // ends, so without that every instance would ask once per token near its end.
    const startedAt = this.#now()
    const usable = (token: CachedToken | null): token is CachedToken =>
      token !== null && (token.value !== current || token.fetchedAt >= startedAt) &&
      this.#now() < staleAt(token, this.#now())
    const known = await this.#shared(() => shared.read(key), null)
    if (usable(known)) return known
    // Another process may be fetching: take the lock, then look again before asking WeCom.
    let fetchedHere: CachedToken | undefined
    const locked = await this.#shared(() => shared.withLock(key, async () => {
      const again = await shared.read(key)
      if (usable(again)) return again
      fetchedHere = await this.#fetch(corp)
      await shared.write(key, fetchedHere)
      return fetchedHere
    }), undefined)
    if (locked !== undefined) return locked
    // The store failed; if it failed after WeCom answered, do not spend a second fetch.
    return fetchedHere ?? await this.#fetch(corp)
  }

  async #fetch (corp: CorpCredentials): Promise<CachedToken> {
    const fetched = await this.#options.fetch(corp)
    const now = this.#now()
    return { value: fetched.value, expiresAt: now + fetched.expiresIn * 1000, fetchedAt: now }
  }

  #remember (key: string, token: CachedToken, previous: string | undefined): void {
    const now = this.#now()
    const life = token.expiresAt - now
    this.#entries.set(key, {
      token,
      staleAt: staleAt(token, now),
      // WeCom hands back the same token until it ends: asking early again would gain nothing.
      aheadAt: token.value === previous ? Infinity : token.expiresAt - Math.min(300_000, life / 4)
    })
  }

  /** Runs a shared-store operation; on failure reports the outage once and yields `fallback`. */
  async #shared<T> (operation: () => Promise<T>, fallback: T): Promise<T> {
    let result: T
    try {
      result = await operation()
    } catch (error) {
      if (error instanceof SharedStoreError) {
        if (!this.#sharedDown) this.#options.onSharedStoreDown?.(error.cause)
        this.#sharedDown = true
        return fallback
      }
      throw error
    }
    if (this.#sharedDown) {
      this.#sharedDown = false
      this.#options.onSharedStoreUp?.()
    }
    return result
  }
}

export interface TokenCacheOptions extends Omit<CredentialCacheOptions, 'kind' | 'fetch'> {
  fetch: (corp: CorpCredentials) => Promise<AccessToken>
}

/** Access tokens per app (gettoken): a CredentialCache under the keys of tokenKey(). */
export class TokenCache extends CredentialCache {
  constructor (options: TokenCacheOptions) {
    super({
      ...options,
      fetch: async (corp) => {
        const { accessToken, expiresIn } = await options.fetch(corp)
        return { value: accessToken, expiresIn }
      }
    })
  }
}

/** Thrown by a SharedTokenStore for its own failures, so they are told apart from WeCom's. */
export class SharedStoreError extends Error {
  constructor (cause: unknown) {
    super('shared token store unavailable', { cause })
    this.name = 'SharedStoreError'
  }
}

/** A token is not used in the last tenth of its life (at most a minute): it may end in transit. */
function staleAt (token: CachedToken, now: number): number {
  return token.expiresAt - Math.min(60_000, Math.max(0, token.expiresAt - now) / 10)
}

function noop (): void {}
