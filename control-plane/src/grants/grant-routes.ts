/**
 * Standing grants over REST, operators only: `POST /v1/grants` gives one
 * (with the grantor's approval), `POST /v1/grants/:id/approve` co-signs one
 * that needs a quorum, `GET /v1/grants` lists, `GET /v1/grants/:id` reads,
 * `DELETE /v1/grants/:id` revokes. Every refusal is a typed error, audited by
 * the error handler, and changes nothing.
 */
import type { FastifyInstance } from 'fastify'
import { requireOperator } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import { GrantApproveBodySchema, GrantIdParamsSchema, GrantListQuerySchema, GrantRequestSchema, GrantRevokeBodySchema } from './grant-schemas.js'
import type { GrantService } from './grant-service.js'

export default async function grantRoutes(app: FastifyInstance, opts: { grants: GrantService }) {
  const { grants } = opts

  app.post('/grants', async (req, reply) => {
    const principal = requireOperator(req)
    const body = parseOrThrow(GrantRequestSchema, req.body, 'body')
    const grant = await grants.create(principal, body)
    req.log.info({ grantId: grant.id, action: grant.action, principal: grant.principal, status: grant.status }, 'grant created')
    return reply.code(201).send(grant)
  })

  app.get('/grants', async (req) => {
    requireOperator(req)
    const q = parseOrThrow(GrantListQuerySchema, req.query, 'query')
    return { grants: await grants.list(q) }
  })

  app.get('/grants/:id', async (req) => {
    requireOperator(req)
    const { id } = parseOrThrow(GrantIdParamsSchema, req.params, 'params')
    return grants.present(await grants.get(id))
  })

  app.post('/grants/:id/approve', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(GrantIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(GrantApproveBodySchema, req.body ?? {}, 'body')
    return grants.approve(principal, id, body.digest, body.passkey)
  })

  app.delete('/grants/:id', async (req) => {
    const principal = requireOperator(req)
    const { id } = parseOrThrow(GrantIdParamsSchema, req.params, 'params')
    const body = parseOrThrow(GrantRevokeBodySchema, req.body ?? {}, 'body')
    const grant = await grants.revoke(principal, id, body.reason)
    req.log.info({ grantId: id }, 'grant revoked')
    return grant
  })
}
