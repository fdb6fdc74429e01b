/**
 * `GET /v1/nodes`: every node the fleet view knows, and whether each pack it
 * reports matches the catalog's digest (only matching packs get writs). An
 * agent sees only the nodes in its scope (policy/policy-scope.ts), as over MCP.
 */
import type { FastifyInstance } from 'fastify'
import { principalOf } from '../auth/index.js'
import { policyNodeOf, restScoped } from '../policy/index.js'

export default async function nodeRoutes(app: FastifyInstance) {
  const { catalog, fleet, scope } = app.writ

  app.get('/nodes', async (req) => {
    const principal = principalOf(req)
    const digests = new Map(catalog.packs.map((p) => [p.id, p.digest]))
    const visible = restScoped(principal) ? fleet.list().filter((n) => scope.node(principal, policyNodeOf(n))) : fleet.list()
    return {
      nodes: visible.map((n) => ({ ...n, packs: n.packs.map((p) => ({ ...p, matches_catalog: digests.get(p.id) === p.digest })) })),
    }
  })
}
