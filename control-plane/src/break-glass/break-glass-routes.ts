/**
 * Break-glass over REST: `POST /v1/runs/:id/break-glass {reason}` runs a
 * gated action alone where policy allows; `GET /v1/reviews` lists the review
 * items it leaves, `POST /v1/reviews/:id/ack` acknowledges one. Every refusal
 * is a typed error, audited by the error handler, that dispatches nothing.
 */
import type { FastifyInstance } from 'fastify'
import { requireOperator } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import { RunIdParamsSchema, type RunService } from '../runs/index.js'
import type { BreakGlass } from './break-glass-service.js'
import { BreakGlassBodySchema, ReviewAckBodySchema, ReviewIdParamsSchema, ReviewListQuerySchema } from './break-glass-schemas.js'

export interface BreakGlassRouteOptions { breakGlass: BreakGlass, runs: RunService }

export default async function breakGlassRoutes(app: FastifyInstance, opts: BreakGlassRouteOptions) {
  const { breakGlass, runs } = opts

  app.post('/runs/:id/break-glass', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(BreakGlassBodySchema, req.body ?? {}, 'body')
    const { run, review } = await breakGlass.run(principal, id, body)
    return { ...runs.present(run), review }
  })

  app.get('/reviews', async (req) => {
    requireOperator(req)
    const q = parseOrThrow(ReviewListQuerySchema, req.query, 'query')
    return { reviews: await breakGlass.list(q.open) }
  })

  app.post('/reviews/:id/ack', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(ReviewIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(ReviewAckBodySchema, req.body ?? {}, 'body')
    return breakGlass.acknowledge(principal, id, body.comment)
  })
}
