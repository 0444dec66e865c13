/**
 * What WeCom issues for a short while under a random name (codes, user_tickets): bounded by a
 * sweep as new ones are issued, aged by the simulator clock, so that advance() expires them.
 */
import { randomBytes } from 'node:crypto'
import type { SimulatorClock } from './time.js'

export class Expiring<T> {
  // Insertion order follows expiry order (one lifetime for all), which lets the sweep stop early.
  private readonly entries = new Map<string, { value: T, expiresAt: number }>()

  /** `lifeMs`: how long each entry lives, in milliseconds. */
  constructor (private readonly clock: SimulatorClock, private readonly lifeMs: number) {}

  /** Stores the value under a new name of `bytes` random bytes (base64url), and returns the name. */
  issue (value: T, bytes: number): string {
    const at = this.clock.now()
    for (const [name, entry] of this.entries) {
      if (entry.expiresAt > at) break
      this.entries.delete(name)
    }
    // Random bytes only: a name reveals nothing of what it stands for.
    const name = randomBytes(bytes).toString('base64url')
    this.entries.set(name, { value, expiresAt: at + this.lifeMs })
    return name
  }

  /** The live value, left in place; undefined if unknown or expired. */
  get (name: string): T | undefined {
    const entry = this.entries.get(name)
    return entry !== undefined && entry.expiresAt > this.clock.now() ? entry.value : undefined
  }

  /** The live value, which is spent (even when expired): single use. */
  take (name: string): T | undefined {
    const value = this.get(name)
    this.entries.delete(name)
    return value
  }
}
