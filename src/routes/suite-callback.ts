import type { FastifyInstance } from 'fastify'
import { CALLBACK_BODY_LIMIT, type CallbackQuery } from '../events/callback.js'
import type { SuiteCallback } from '../events/suite-callback.js'
import type { SuitePushes } from '../suites/pushes.js'

export interface SuiteCallbackRouteOptions {
  /** The suites' Tokens and keys, and the provider's CorpID: what opens a delivery. */
  receiver: SuiteCallback
  pushes: SuitePushes
  schemas: { check: object, push: object }
  config: object
}

/**
 * The suites' callback, `GET {prefix}/suite/callback` (the URL check when the provider saves it)
 * and `POST` (the suite's pushes, and the events of the corps that installed it), in a context whose body parser reads XML as text (routes.ts).
 * Every refusal is a 4xx from the errors table, with no side effect.
 */
export async function suiteCallbackRoutes (child: FastifyInstance, { receiver, pushes, schemas, config }: SuiteCallbackRouteOptions): Promise<void> {
  child.get('/suite/callback', { schema: schemas.check, config }, async (request, reply) => {
    const echo = receiver.verifyUrl(request.query as CallbackQuery, Date.now())
    return reply.type('text/plain; charset=utf-8').send(echo)
  })
  child.post('/suite/callback', { bodyLimit: CALLBACK_BODY_LIMIT, schema: schemas.push, config }, async (request, reply) => {
    const delivery = receiver.open(request.query as CallbackQuery, request.body, Date.now())
    if (delivery.kind === 'push') await pushes.handle(delivery.suite, delivery.push, request)
    else await pushes.corpEvent(delivery.suite, delivery.corpId, delivery.event, request)
    // WeCom's acknowledgement: anything else, or no answer within 5 s, and it resends.
    return reply.type('text/plain; charset=utf-8').send('success')
  })
}
