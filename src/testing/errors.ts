/**
 * Thrown (or a promise rejects with it) when a call names what the simulator does not have: an
 * unknown corp, a corp without that member, a member without a session_key yet. The caller named
 * something absent, so a control route answers it with a 404 (the CLI's /sim/ routes, the
 * example's /dev/ routes). Tell it apart by `code` ('SIMULATOR_NOT_FOUND'), which holds across the
 * ES module and CommonJS builds, or by `instanceof` within one; the message starts
 * 'WeCom simulator: ' and names the corp or member, never a secret.
 */
export class SimulatorNotFoundError extends Error {
  readonly code = 'SIMULATOR_NOT_FOUND'

  constructor (message: string) {
    super(`WeCom simulator: ${message}`)
    this.name = 'SimulatorNotFoundError'
  }
}

/** Whether an error is the simulator's not-found, by its code (see SimulatorNotFoundError). */
export function isSimulatorNotFound (error: unknown): error is SimulatorNotFoundError {
  return (error as { code?: unknown } | null)?.code === 'SIMULATOR_NOT_FOUND'
}
