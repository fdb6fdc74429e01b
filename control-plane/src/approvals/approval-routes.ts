/**
 * Operators decide runs over REST: `GET /v1/approvals` lists what waits (a
 * page at a time, with the total and a cursor to the next page),
 * `POST /v1/runs/:id/approve` and `/deny` decide. Every refusal is a typed
 * error, audited by the error handler; none of them dispatches anything.
 */
import type { FastifyInstance } from 'fastify'
import { requireOperator } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import { RunIdParamsSchema, runSummary } from '../runs/index.js'
import { ApprovalListQuerySchema, ApproveBodySchema, DenyBodySchema } from './approval-schemas.js'

export default async function approvalRoutes(app: FastifyInstance) {
  const { approvals, runs, store } = app.writ

  app.get('/approvals', async (req) => {
    const principal = requireOperator(req)
    const q = parseOrThrow(ApprovalListQuerySchema, req.query, 'query')
    const page = approvals.page({ node: q.node, action: q.action, requester: q.requester, approver: q.mine ? principal : undefined }, q.limit, q.cursor)
    // Each with its arguments (sensitive ones redacted): a person decides on what runs, not on a summary.
    const shown = await Promise.all(page.runs.map(async (r) => {
      const full = (await store.current(r.id))?.run
      return { ...r, summary: full ? runSummary(full, app.writ.catalog) : r.action, args: full ? runs.present(full).args : {}, approval: approvals.summary(r) }
    }))
    return { approvals: shown, total: page.total, next_cursor: page.next_cursor }
  })

  app.post('/runs/:id/approve', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(ApproveBodySchema, req.body ?? {}, 'body')
    return runs.present(await approvals.decide(principal, id, { decision: 'approve', comment: body.comment, binding: body.binding, passkey: body.passkey }))
  })

  app.post('/runs/:id/deny', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(DenyBodySchema, req.body, 'body')
    return runs.present(await approvals.decide(principal, id, { decision: 'deny', reason: body.reason, binding: body.binding }))
  })
}
