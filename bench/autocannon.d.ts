// autocannon ships no types and @types/autocannon is not a dependency: only what the bench uses.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string
      setupRequest?: (request: Request) => Request
    }

    interface Options {
      url: string | string[]
      connections?: number
      duration?: number
      amount?: number
      timeout?: number
      method?: string
      headers?: Record<string, string>
      requests?: Request[]
    }

    interface Result {
      errors: number
      timeouts: number
      non2xx: number
      '2xx': number
    }

    interface Instance extends EventEmitter, PromiseLike<Result> {
      on (event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): this
    }
  }

  function autocannon (options: autocannon.Options): autocannon.Instance
  export = autocannon
}
