/**
 * `GET /v1/actions`, `GET /v1/actions/:id`: the
 * authoritative catalog (risk and argument contracts come from our packs,
 * never from what a runner declares).
 */
import type { FastifyInstance } from 'fastify'
import type { LoadedAction, LoadedPack } from '@writ/packs'
import { ActionIdParamsSchema, ActionListQuerySchema } from './catalog-schemas.js'
import { ActionNotFound, NodeNotFound, parseOrThrow } from '../http/index.js'
import type { FleetNode } from '../fleet/index.js'

export default async function catalogRoutes(app: FastifyInstance) {
  const { catalog, fleet } = app.writ

  const hasPack = (node: FleetNode, pack: LoadedPack): boolean => node.packs.some((p) => p.id === pack.id && p.digest === pack.digest)

  const summary = (pack: LoadedPack, a: LoadedAction) => ({
    id: a.id, pack: pack.id, title: a.spec.title, risk: a.spec.risk, kind: a.spec.kind, description: a.spec.description,
  })

  app.get('/actions', async (req) => {
    const q = parseOrThrow(ActionListQuerySchema, req.query, 'query')
    let node: FleetNode | undefined
    if (q.node !== undefined) {
      node = fleet.find(q.node)
      if (!node) throw new NodeNotFound(q.node)
    }
    const needle = q.q?.toLowerCase()
    const out = []
    for (const { pack, action } of catalog.allActions()) {
      if (q.pack !== undefined && pack.id !== q.pack) continue
      if (q.risk !== undefined && action.spec.risk !== q.risk) continue
      if (node && !hasPack(node, pack)) continue
      if (needle) {
        const hay = [action.id, action.spec.title, action.spec.description, ...(action.spec.search_terms ?? [])].join(' ').toLowerCase()
        if (!needle.split(/\s+/).every((w) => hay.includes(w))) continue
      }
      out.push(summary(pack, action))
      if (out.length >= q.limit) break
    }
    return { actions: out.sort((a, b) => a.id.localeCompare(b.id)) }
  })

  app.get('/actions/:id', async (req) => {
    const { id } = parseOrThrow(ActionIdParamsSchema, req.params, 'params')
    const hit = catalog.lookup(id)
    if (!hit.ok) throw new ActionNotFound(id)
    const { pack, action } = hit
    const spec = action.spec
    return {
      ...summary(pack, action),
      pack_version: pack.version, pack_digest: pack.digest, side_effects: spec.side_effects,
      args: spec.args.map((a) => ({ ...a })), timeout: spec.execution.timeout, examples: spec.examples,
      nodes: fleet.list().filter((n) => hasPack(n, pack)).map((n) => ({ id: n.id, name: n.name, online: n.online })),
    }
  })
}
