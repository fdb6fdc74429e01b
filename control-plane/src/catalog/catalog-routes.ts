/**
 * `GET /v1/actions`, `GET /v1/actions/:id`: the
 * authoritative catalog (risk and argument contracts come from our packs,
 * never from what a runner declares). An agent sees only its scope
 * (policy/policy-scope.ts), as over MCP: an action or node outside it is
 * answered exactly as one that does not exist.
 */
import type { FastifyInstance } from 'fastify'
import { describeSideEffects, type LoadedAction, type LoadedPack } from '@writ/packs'
import { ActionIdParamsSchema, ActionListQuerySchema } from './catalog-schemas.js'
import { ActionNotFound, NodeNotFound, parseOrThrow } from '../http/index.js'
import type { FleetNode } from '../fleet/index.js'
import { principalOf, type Principal } from '../auth/index.js'
import { policyNodeOf, restScoped } from '../policy/index.js'

export default async function catalogRoutes(app: FastifyInstance) {
  const { catalog, fleet, scope } = app.writ

  /** What `principal` may see of the catalog and the fleet: everything for operators, its scope for an agent. */
  const visibility = (principal: Principal) => {
    const scoped = restScoped(principal)
    return {
      action: (a: LoadedAction): boolean => !scoped || scope.action(principal, { id: a.id, risk: a.spec.risk }),
      node: (n: FleetNode): boolean => !scoped || scope.node(principal, policyNodeOf(n)),
    }
  }

  const hasPack = (node: FleetNode, pack: LoadedPack): boolean => node.packs.some((p) => p.id === pack.id && p.digest === pack.digest)

  const summary = (pack: LoadedPack, a: LoadedAction) => ({
    id: a.id, pack: pack.id, title: a.spec.title, risk: a.spec.risk, kind: a.spec.kind, description: a.spec.description,
  })

  app.get('/actions', async (req) => {
    const q = parseOrThrow(ActionListQuerySchema, req.query, 'query')
    const principal = principalOf(req)
    const sees = visibility(principal)
    let node: FleetNode | undefined
    if (q.node !== undefined) {
      node = fleet.find(q.node)
      if (!node || !sees.node(node)) throw new NodeNotFound(q.node)
    }
    const needle = q.q?.toLowerCase()
    const out = []
    for (const { pack, action } of catalog.allActions()) {
      if (q.pack !== undefined && pack.id !== q.pack) continue
      if (q.risk !== undefined && action.spec.risk !== q.risk) continue
      if (node && !hasPack(node, pack)) continue
      if (!sees.action(action)) continue
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
    const sees = visibility(principalOf(req))
    if (!hit.ok || !sees.action(hit.action)) throw new ActionNotFound(id)
    const { pack, action } = hit
    const spec = action.spec
    return {
      ...summary(pack, action),
      pack_version: pack.version, pack_digest: pack.digest, side_effects: describeSideEffects(spec.side_effects),
      args: spec.args.map((a) => ({ ...a })), timeout: spec.execution.timeout, examples: spec.examples,
      nodes: fleet.list().filter((n) => hasPack(n, pack) && sees.node(n)).map((n) => ({ id: n.id, name: n.name, online: n.online })),
    }
  })
}
