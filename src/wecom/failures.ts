import { describeErrcode, type ErrcodeClass } from './errcodes.js'

/**
 * A WeCom API as breakers, refusals, budgets and log lines name it: the path under /cgi-bin/
 * (`user/get`, `message/send`). A string, since `api()` reaches any path: each path gets its own
 * breaker and budget.
 */
export type WecomEndpoint = string

/** WeCom answered with a non-zero errcode. Carries no URL, token, secret or code. */
export class WecomApiError extends Error {
  readonly errcode: number
  readonly class: ErrcodeClass
  readonly endpoint: WecomEndpoint
  /** WeCom's request id from errmsg ("hint: [...]"), for WeCom support. */
  readonly hint?: string
  /** The call carried a client's code (EndpointSpec.clientInput): a `code` errcode is the client's. */
  readonly clientInput: boolean
  /** The call checked the member (EndpointSpec.memberCheck): a `forbidden` errcode is the member's. */
  readonly memberCheck: boolean

  /** `spec`: what the endpoint's row says of the call. */
  constructor (endpoint: WecomEndpoint, errcode: number, errmsg: unknown, spec: { clientInput?: true, memberCheck?: true } = {}) {
    const info = describeErrcode(errcode)
    super(`${endpoint} answered errcode ${errcode}: ${info.explanation}`)
    this.name = 'WecomApiError'
    this.endpoint = endpoint
    this.errcode = errcode
    this.class = info.class
    this.clientInput = spec.clientInput === true
    this.memberCheck = spec.memberCheck === true
    this.hint = typeof errmsg === 'string' ? /hint: \[([\w-]+)\]/.exec(errmsg)?.[1] : undefined
  }
}

/**
 * The call did not produce a usable answer. `unreachable`: connection failure or a non-200
 * status, so WeCom may never have seen it; `timeout`: the request's deadline passed during the
 * call; `malformed`: an answer that does not parse or lacks its fields.
 */
export class WecomTransportError extends Error {
  readonly kind: 'unreachable' | 'timeout' | 'malformed'
  readonly endpoint: WecomEndpoint

  constructor (endpoint: WecomEndpoint, kind: WecomTransportError['kind'], detail: string) {
    super(`${endpoint} ${kind === 'malformed' ? 'gave an unusable answer' : kind === 'timeout' ? 'did not answer in time' : 'could not be reached'}: ${detail}`)
    this.name = 'WecomTransportError'
    this.endpoint = endpoint
    this.kind = kind
  }
}

/** Why a call was refused here without calling WeCom (see admission.ts). */
export type FailFastReason =
  /** The endpoint's breaker is open. */
  | 'breaker'
  /** The outbound budget (api.budget) of the corp and endpoint, or the client's share of it, is spent. */
  | 'budget'
  /** A configuration error WeCom answered is remembered for the app (api.refusals.config). */
  | 'refused'
  /** WeCom's rate or concurrency limit (45009, 45033) is remembered for the corp and endpoint. */
  | 'paused'
  /** A credential could not be had or was refused while fresh: its next fetch waits. */
  | 'backoff'
  /** The time left could not cover the calls still to make: nothing is spent on a late answer. */
  | 'deadline'
  /** A suite has no suite_ticket within its 30 minutes: WeCom pushes the next within 10, or a person re-pushes it. */
  | 'no-ticket'

/** Refused here without calling WeCom. */
export class WecomFailFastError extends Error {
  readonly reason: FailFastReason
  readonly endpoint: WecomEndpoint
  /** Milliseconds until a call may go again. */
  readonly retryAfter: number
  /** What WeCom said when the refusal was remembered. */
  readonly refusal?: WecomApiError | WecomTransportError

  constructor (endpoint: WecomEndpoint, reason: FailFastReason, retryAfter: number, refusal?: WecomApiError | WecomTransportError) {
    super(`${endpoint} not called (${reason}): ${refusal?.message ?? 'retry later'}`)
    this.name = 'WecomFailFastError'
    this.endpoint = endpoint
    this.reason = reason
    this.retryAfter = retryAfter
    if (refusal !== undefined) this.refusal = refusal
  }
}

/** What one call to WeCom can end with, short of an answer. */
export type WecomFailure = WecomApiError | WecomTransportError
