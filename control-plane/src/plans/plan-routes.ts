/**
 * Plans over REST: `POST /v1/plans` makes one (202 while it waits or runs,
 * 200 once finished when `wait` lets it), `GET /v1/plans/:id` reads it with
 * its results grouped (long-poll with `wait`), `GET /v1/plans` lists, and
 * `POST /v1/plans/:id/approve|deny|halt` decide and stop. Every refusal is a
 * typed error, audited by the error handler; none dispatches anything.
 */
import type { FastifyInstance } from 'fastify'
import { principalOf, requireOperator } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import { ApproveBodySchema, DenyBodySchema } from '../approvals/index.js'
import { FINISHED_PLAN, HaltBodySchema, PlanIdParamsSchema, PlanListQuerySchema, PlanRequestSchema, PlanWaitQuerySchema } from './plan-schemas.js'
import type { Plans } from './plans.js'

export default async function planRoutes(app: FastifyInstance, opts: { plans: Plans, maxWaitMs: number }) {
  const { plans, maxWaitMs } = opts
  const waitMs = (seconds: number): number => Math.min(seconds * 1000, maxWaitMs)

  app.post('/plans', async (req, reply) => {
    const principal = principalOf(req)
    const body = parseOrThrow(PlanRequestSchema, req.body, 'body')
    const { plan } = await plans.create(principal, body)
    const view = await plans.view(principal, plan.id, { waitMs: waitMs(body.wait) })
    req.log.info({ planId: plan.id, action: plan.action, targets: plan.targets.length, status: view.status }, 'plan requested')
    return reply.code(FINISHED_PLAN.has(view.status) ? 200 : 202).send(view)
  })

  app.get('/plans/:id', async (req) => {
    const principal = principalOf(req)
    const { id } = parseOrThrow(PlanIdParamsSchema, req.params, 'params')
    const { wait } = parseOrThrow(PlanWaitQuerySchema, req.query, 'query')
    return plans.view(principal, id, { waitMs: waitMs(wait) })
  })

  app.get('/plans', async (req) => {
    const principal = principalOf(req)
    const q = parseOrThrow(PlanListQuerySchema, req.query, 'query')
    const found = await plans.service.list(principal, { status: q.status, session_id: q.session_id }, q.limit)
    return {
      plans: found.map(({ plan, state }) => ({
        plan_id: plan.id, status: state.status, status_reason: state.status_reason, action: plan.action, targets: plan.targets.length,
        requester: plan.requester, created_at: plan.created_at, ...(state.finished_at ? { finished_at: state.finished_at } : {}),
        ...(plan.selector !== undefined ? { selector: plan.selector } : {}),
      })),
    }
  })

  app.post('/plans/:id/approve', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(PlanIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(ApproveBodySchema, req.body ?? {}, 'body')
    await plans.decide(principal, id, { decision: 'approve', comment: body.comment, binding: body.binding, passkey: body.passkey })
    return plans.view(principal, id)
  })

  app.post('/plans/:id/deny', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(PlanIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(DenyBodySchema, req.body, 'body')
    await plans.decide(principal, id, { decision: 'deny', reason: body.reason, binding: body.binding })
    return plans.view(principal, id)
  })

  app.post('/plans/:id/halt', async (req) => {
    const principal = principalOf(req)
    const { id } = parseOrThrow(PlanIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(HaltBodySchema, req.body, 'body')
    await plans.service.halt(principal, id, body.reason)
    return plans.view(principal, id)
  })
}
