/**
 * `GET /v1/nodes`: every node the fleet view knows, and whether each pack it
 * reports matches the catalog's digest (only matching packs get writs).
 */
import type { FastifyInstance } from 'fastify'

export default async function nodeRoutes(app: FastifyInstance) {
  const { catalog, fleet } = app.writ

  app.get('/nodes', async () => {
    const digests = new Map(catalog.packs.map((p) => [p.id, p.digest]))
    return {
      nodes: fleet.list().map((n) => ({ ...n, packs: n.packs.map((p) => ({ ...p, matches_catalog: digests.get(p.id) === p.digest })) })),
    }
  })
}
