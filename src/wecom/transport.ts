import { Pool, ProxyAgent, request, type Dispatcher } from 'undici'
import { WecomTransportError, type WecomEndpoint } from './failures.js'

/** A JSON object WeCom answered, whatever its errcode. */
export type Answer = Record<string, unknown>

/** What one exchange sends: the path under the base URL, its query, and for a POST its JSON body. */
export interface Outgoing {
  path: string
  query: Record<string, string>
  body?: string
  /** Bytes of the answer read at most: past it the answer is malformed. */
  maxBody: number
}

export interface TransportOptions {
  baseUrl: string
  /** Milliseconds: the connect timeout, and undici's own (coarse) bounds behind each deadline. */
  timeout: number
  proxy?: string
  /** The host's own dispatcher: used as it is, never closed here. */
  dispatcher?: Dispatcher
}

/**
 * HTTP to WeCom through undici: one keep-alive pool for every call (a TLS handshake per login
 * would cost more than the call), every exchange bounded by its request's deadline signal, every
 * answer a JSON object or a WecomTransportError that names no URL (the URL carries the token).
 */
export class Transport {
  readonly #origin: string
  readonly #basePath: string
  readonly #timeout: number
  readonly #dispatcher: Dispatcher
  readonly #owned: boolean

  constructor (options: TransportOptions) {
    const base = new URL(options.baseUrl)
    this.#origin = base.origin
    this.#basePath = base.pathname.replace(/\/+$/, '')
    this.#timeout = options.timeout
    this.#owned = options.dispatcher === undefined
    this.#dispatcher = options.dispatcher ??
      (options.proxy !== undefined
        ? new ProxyAgent({ uri: options.proxy, connect: { timeout: options.timeout } })
        : new Pool(this.#origin, { connections: 64, pipelining: 1, connect: { timeout: options.timeout } }))
  }

  /**
   * Requests waiting for a connection of the pool, per connection: under local overload a call
   * queues here before WeCom sees it, for about this many calls' time. 0 for a proxy or a
   * dispatcher that does not say.
   */
  get queued (): number {
    const stats = (this.#dispatcher as Partial<Pool>).stats
    return stats === undefined ? 0 : stats.pending / Math.max(1, stats.connected)
  }

  async exchange (endpoint: WecomEndpoint, outgoing: Outgoing, signal: AbortSignal): Promise<Answer> {
    // URLSearchParams encodes each value whole: a code like `a&userid=x` stays one value.
    const url = `${this.#origin}${this.#basePath}${outgoing.path}?${new URLSearchParams(outgoing.query).toString()}`
    let response: Dispatcher.ResponseData
    try {
      response = await request(url, {
        method: outgoing.body === undefined ? 'GET' : 'POST',
        body: outgoing.body,
        headers: outgoing.body === undefined ? undefined : { 'content-type': 'application/json' },
        dispatcher: this.#dispatcher,
        signal,
        // Behind the deadline's precise timer, undici's own (coarse) ones only as a backstop.
        headersTimeout: this.#timeout,
        bodyTimeout: this.#timeout
      })
    } catch (error) {
      // The cause is named by its class only: undici messages can carry the URL, and so the token.
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (response.statusCode !== 200) {
      await response.body.dump().catch(noop)
      throw new WecomTransportError(endpoint, 'unreachable', `HTTP ${response.statusCode}`)
    }
    let answer: unknown
    try {
      answer = JSON.parse(await readBody(response, outgoing.maxBody, this.#owned))
    } catch (error) {
      if (error instanceof SyntaxError) throw new WecomTransportError(endpoint, 'malformed', 'not JSON')
      if (error instanceof RangeError) throw new WecomTransportError(endpoint, 'malformed', `body over ${outgoing.maxBody} bytes`)
      throw new WecomTransportError(endpoint, 'unreachable', errorName(error))
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      throw new WecomTransportError(endpoint, 'malformed', 'not a JSON object')
    }
    return answer as Answer
  }

  async close (): Promise<void> {
    if (this.#owned) await this.#dispatcher.close()
  }
}

/**
 * The body as text, or a RangeError past `max` bytes (the rest is not read). An answer that says
 * its length (the simulator's, and any small JSON a server does not stream) is read whole at once:
 * undici ends the body at Content-Length, so it is bounded by it, and a stream iterated chunk by
 * chunk cost a login more than its JSON.parse. Only through our own pool or proxy
 * (`framedByUndici`): a host's dispatcher (a mock, an interceptor) may answer past its header.
 */
async function readBody ({ headers, body }: Dispatcher.ResponseData, max: number, framedByUndici: boolean): Promise<string> {
  const length = headers['content-length']
  if (framedByUndici && typeof length === 'string' && /^\d{1,10}$/.test(length)) return Number(length) > max ? tooLarge(body) : await body.text()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > max) tooLarge(body)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Stops reading an answer past its limit: the rest is not read. */
function tooLarge (body: Dispatcher.ResponseData['body']): never {
  body.destroy()
  throw new RangeError('body too large')
}

function errorName (error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${error.name} (${code})` : error.name
  }
  return 'unknown error'
}

function noop (): void {}
