/**
 * `GET /v1/nodes`: every node the fleet view knows, whether each pack it
 * reports matches the catalog's digest (only matching packs get writs), and
 * how the approver registry it holds compares with the control plane's.
 */
import type { FastifyInstance } from 'fastify'
import { registryStanding } from './registry-standing.js'

export default async function nodeRoutes(app: FastifyInstance) {
  const { catalog, fleet, passkeys } = app.writ

  app.get('/nodes', async () => {
    const digests = new Map(catalog.packs.map((p) => [p.id, p.digest]))
    const current = passkeys?.mark
    return {
      nodes: fleet.list().map((n) => ({
        ...n, packs: n.packs.map((p) => ({ ...p, matches_catalog: digests.get(p.id) === p.digest })),
        approver_registry_standing: registryStanding(n.approver_registry, current),
      })),
    }
  })
}
