import { ApiCallError, InvalidCodeError, UpstreamError, UserForbiddenError, unavailable } from '../errors.js'
import type { WecomLogger } from './admission.js'
import { DeadlineExceededError, withDeadline, type Deadline } from './deadline.js'
import { WecomApiError, WecomFailFastError, WecomTransportError } from './failures.js'

/**
 * Who asked: a login or recheck (`login`) answers WeCom's errcodes in the login's terms; the
 * host's own call (`api`) gets the errcode back as WECOM_API_ERROR.
 */
export type Asker = 'login' | 'api'

/**
 * Runs `work` under a fresh deadline of `timeout` ms and answers in the errors table's terms: the
 * one translation of WeCom outcomes into public errors (README, "Errors").
 */
export async function decide<T> (timeout: number, asker: Asker, log: Pick<WecomLogger, 'debug' | 'info'>, work: (deadline: Deadline) => Promise<T>): Promise<T> {
  try {
    return await withDeadline(timeout, work)
  } catch (error) {
    throw publicError(error, asker, log)
  }
}

/**
 * A WeCom outcome as the errors table says it; anything else (the host's own errors, the errors
 * table's already) as it is. WeCom's own trouble was logged by admission.ts, once per change:
 * here at debug only, or an outage would write a line per request.
 */
export function publicError (error: unknown, asker: Asker, log: Pick<WecomLogger, 'debug' | 'info'>): unknown {
  if (error instanceof WecomFailFastError) {
    log.debug({ endpoint: error.endpoint, reason: error.reason }, `wecom: ${error.message}`)
    return error.reason === 'refused' ? new UpstreamError() : unavailable(error.retryAfter)
  }
  if (error instanceof DeadlineExceededError) return unavailable()
  if (error instanceof WecomTransportError) {
    log.debug({ endpoint: error.endpoint }, `wecom: ${error.message}`)
    return error.kind === 'malformed' ? new UpstreamError() : unavailable()
  }
  if (!(error instanceof WecomApiError)) return error
  const fields = { endpoint: error.endpoint, errcode: error.errcode, hint: error.hint }
  // Busy after its retries, limited, or a token refused after its one refresh: a passing state.
  if (error.class === 'retry' || error.class === 'limited' || error.class === 'token') {
    log.debug(fields, `wecom: ${error.message}`)
    return unavailable()
  }
  if (asker === 'api') {
    log.debug(fields, `wecom: ${error.message}`)
    return Object.assign(new ApiCallError(error.endpoint, error.errcode), { errcode: error.errcode, endpoint: error.endpoint, hint: error.hint })
  }
  // A code errcode of a call that carried no client's code (a ticket's) is no reason to log in again.
  if (error.class === 'code' && error.clientInput) {
    log.info(fields, `wecom: ${error.message}`)
    return new InvalidCodeError()
  }
  if (error.class === 'forbidden' && error.memberCheck) {
    log.info(fields, `wecom: ${error.message}`)
    return new UserForbiddenError()
  }
  log.debug(fields, `wecom: ${error.message}`)
  return new UpstreamError()
}
