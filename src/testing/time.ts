/** The simulator's time: the clock it was given, the offset advance() adds, and its pending timers. */

export function nonNegative (name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a finite number >= 0, got ${value}`)
  }
  return value
}

export class SimulatorClock {
  private offset = 0

  /** `wall` is the clock in milliseconds the simulator was given (Date.now by default). */
  constructor (readonly wall: () => number) {}

  /** The wall clock moved by advance(): what codes and tokens expire by. */
  now (): number {
    return this.wall() + this.offset
  }

  advance (ms: number): void {
    this.offset += nonNegative('advance', ms)
  }
}

/** Every timer the simulator set (latency, trickles, callback resends), so that close() clears them. */
export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>()

  after (ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.pending.delete(timer)
      run()
    }, ms)
    this.pending.add(timer)
  }

  clear (): void {
    for (const timer of this.pending) clearTimeout(timer)
    this.pending.clear()
  }
}
