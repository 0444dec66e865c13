/**
 * The simulator's HTTP side, on node:http alone so that benchmarks can drive it at thousands of
 * requests per second without the simulator being the bottleneck: routing to ENDPOINTS (with the
 * per-endpoint counters, the request log, latency and queued faults) and to WeCom's PAGES.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { EndpointContext } from './context.js'
import { ENDPOINTS, type WecomEndpoint } from './endpoints.js'
import { answerFault, answersNormally, delayOf, FaultQueue, type SimulatedFault, type SimulatedFaultMix } from './faults.js'
import { PAGES, writePage } from './pages.js'
import { nonNegative, type Timers } from './time.js'
import { writeReply } from './wire.js'

export interface SimulatedRequest {
  /** 1 for the simulator's first request and counting on, past the log's bound. */
  id: number
  endpoint: WecomEndpoint
  query: Record<string, string>
  /** The errcode answered; undefined until then, and for a fault that sends no JSON. */
  errcode?: number
  /**
   * Whole milliseconds from arrival until the answer's last byte went to the socket: latency,
   * delay and trickle included, so a slow answer shows as slow. Undefined while unanswered, and
   * for a timeout; 0 for a loopback answer under half a millisecond.
   */
  ms?: number
}

interface ServerOptions {
  host: string
  port: number
  latency: number
  fallback?: (req: IncomingMessage, res: ServerResponse) => void
}

const PATHS: ReadonlyMap<string, WecomEndpoint> = new Map(
  Object.entries(ENDPOINTS).map(([endpoint, { path }]) => [path, endpoint as WecomEndpoint]))
/** message/send bodies are a few KiB; WeCom caps text messages at 2048 bytes. */
const MAX_POSTED_BODY = 64 * 1024
const REQUEST_LOG_SIZE = 100

/** First occurrence wins for repeated keys, the way WeCom's CGI reads them. */
function parseQuery (search: string): Record<string, string> {
  const seen = new Map<string, string>()
  for (const [key, value] of new URLSearchParams(search)) {
    if (!seen.has(key)) seen.set(key, value)
  }
  // fromEntries defines own properties, so a '__proto__' parameter stays plain data.
  return Object.fromEntries(seen)
}

/** Counters of every endpoint at 0; only a login's three are enumerable, so that a test comparing them stays as it is. */
function zeroCalls (): Record<WecomEndpoint, number> {
  const calls = {} as Record<WecomEndpoint, number>
  for (const [endpoint, row] of Object.entries(ENDPOINTS)) {
    Object.defineProperty(calls, endpoint, { value: 0, writable: true, enumerable: 'login' in row })
  }
  return calls
}

export class SimulatorServer {
  readonly calls = zeroCalls()
  private readonly faults = new FaultQueue<WecomEndpoint>()
  private readonly log: SimulatedRequest[] = []
  private requestCount = 0
  private latency: number
  private readonly server = createServer((req, res) => this.route(req, res))
  private closing: Promise<void> | undefined

  constructor (private readonly context: EndpointContext, private readonly timers: Timers, private readonly options: ServerOptions) {
    this.latency = nonNegative('latency', options.latency)
  }

  /** Listens; resolves with the base URL, e.g. 'http://127.0.0.1:41234'. */
  async listen (): Promise<string> {
    const { server, options } = this
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port, options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { port } = server.address() as AddressInfo
    return `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`
  }

  /** Copies: an entry still unanswered gets its errcode and ms later, in the log only. */
  requests (): SimulatedRequest[] {
    return this.log.map((entry) => ({ ...entry }))
  }

  resetCalls (): void {
    for (const endpoint of Object.keys(ENDPOINTS) as WecomEndpoint[]) this.calls[endpoint] = 0
  }

  /** Queues a fault for the next `times` calls of the endpoint (Infinity allowed). */
  inject (endpoint: WecomEndpoint, fault: SimulatedFault, times: number): void {
    this.faults.inject(known(endpoint), fault, times)
  }

  /** Every later call of the endpoint meets one of the mix's faults with the mix's chance. */
  mixFaults (endpoint: WecomEndpoint, mix: SimulatedFaultMix): void {
    this.faults.mix(known(endpoint), mix)
  }

  /** Faults of the mixes met so far, all endpoints together. */
  get faultsMet (): number {
    let met = 0
    for (const count of this.faults.met.values()) met += count
    return met
  }

  clearFaults (): void {
    this.faults.clear()
  }

  setLatency (ms: number): void {
    this.latency = nonNegative('latency', ms)
  }

  /** Closes the server and every socket, including requests held by a timeout fault. */
  close (): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      // Held 'timeout' requests and idle keep-alive sockets would otherwise keep close() waiting.
      this.server.closeAllConnections()
    })
    return this.closing
  }

  private route (req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const mark = url.indexOf('?')
    const path = mark === -1 ? url : url.slice(0, mark)
    const endpoint = PATHS.get(path)
    const search = mark === -1 ? '' : url.slice(mark + 1)
    const page = PAGES.get(path)
    if (page !== undefined) {
      req.resume()
      writePage(res, page(this.context, parseQuery(search)))
      return
    }
    if (endpoint === undefined && this.options.fallback !== undefined) {
      this.options.fallback(req, res)
      return
    }
    if (endpoint === undefined) {
      // Any body is ignored but must be read, or the keep-alive connection stalls.
      req.resume()
      writeReply(res, { errcode: 40066 }, this.timers, () => {})
      return
    }
    if (ENDPOINTS[endpoint].method !== 'POST' || req.method !== 'POST') {
      req.resume()
      this.receive(req, res, endpoint, search, '')
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_POSTED_BODY) chunks.push(chunk)
    })
    // A body past the limit reads as no JSON at all: 47001, as WeCom answers.
    req.on('end', () => this.receive(req, res, endpoint, search, size <= MAX_POSTED_BODY ? Buffer.concat(chunks).toString('utf8') : ''))
  }

  private receive (req: IncomingMessage, res: ServerResponse, endpoint: WecomEndpoint, search: string, body: string): void {
    this.calls[endpoint] += 1
    const arrived = performance.now()
    const entry: SimulatedRequest = { id: ++this.requestCount, endpoint, query: parseQuery(search) }
    this.log.push(entry)
    if (this.log.length > REQUEST_LOG_SIZE) this.log.shift()
    const fault = this.faults.take(endpoint)
    const record = {
      errcode: (errcode: number) => { entry.errcode = errcode },
      sent: () => { entry.ms = Math.round(performance.now() - arrived) },
    }
    const answer = (): void => {
      if (!answersNormally(fault)) {
        answerFault(fault, req, res, this.timers, record)
        return
      }
      const { method, answer } = ENDPOINTS[endpoint]
      const reply = req.method === method ? answer(this.context, entry.query, body) : { errcode: method === 'POST' ? 43002 : 43001 }
      record.errcode(reply.errcode)
      writeReply(res, reply, this.timers, record.sent, fault !== undefined && 'trickle' in fault ? fault.trickle : undefined)
    }
    const wait = this.latency + delayOf(fault)
    if (wait <= 0) answer()
    else this.timers.after(wait, answer)
  }
}

/** `endpoint`, when the simulator serves it; a host's typo is said rather than never met. */
function known (endpoint: WecomEndpoint): WecomEndpoint {
  if (!Object.hasOwn(ENDPOINTS, endpoint)) throw new Error(`WeCom simulator: unknown endpoint ${JSON.stringify(endpoint)}`)
  return endpoint
}
