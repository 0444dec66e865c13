/**
 * The time one login or refresh may spend on WeCom, all calls together: connection, time queued in
 * the pool, headers, body, -1 retries and the one token refresh. One timer per request, fired at
 * the millisecond (undici's own timers tick about every half second), aborting whatever call is
 * running then.
 */
export class Deadline {
  /** Epoch ms at which the work is given up. */
  readonly at: number
  readonly signal: AbortSignal
  readonly #controller = new AbortController()
  readonly #timer: NodeJS.Timeout

  /** @param ms the budget, from now. */
  constructor (ms: number) {
    this.at = Date.now() + ms
    this.signal = this.#controller.signal
    // unref: a deadline never keeps the process alive on its own.
    this.#timer = setTimeout(() => this.#controller.abort(new DeadlineExceededError()), ms).unref()
  }

  /** Milliseconds left, 0 once passed. */
  remaining (): number {
    return Math.max(0, this.at - Date.now())
  }

  get expired (): boolean {
    return this.signal.aborted
  }

  /** Settles as `work` does, or rejects with DeadlineExceededError when the deadline comes first. */
  race<T> (work: Promise<T>): Promise<T> {
    if (this.signal.aborted) {
      work.catch(noop)
      return Promise.reject(this.signal.reason)
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(this.signal.reason)
      this.signal.addEventListener('abort', onAbort, { once: true })
      work.then(resolve, reject).finally(() => this.signal.removeEventListener('abort', onAbort))
    })
  }

  /** Stops the timer once the work is done. */
  clear (): void {
    clearTimeout(this.#timer)
  }
}

/** The deadline of the request passed before WeCom's work was done. */
export class DeadlineExceededError extends Error {
  constructor () {
    super('the request deadline (api.timeout) passed before WeCom answered')
    this.name = 'DeadlineExceededError'
  }
}

/** Runs `work` under a fresh deadline of `ms`, clearing its timer however it ends. */
export async function withDeadline<T> (ms: number, work: (deadline: Deadline) => Promise<T>): Promise<T> {
  const deadline = new Deadline(ms)
  try {
    return await work(deadline)
  } finally {
    deadline.clear()
  }
}

function noop (): void {}
