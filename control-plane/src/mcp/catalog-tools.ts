/**
 * The read tools over the fleet and the catalog: list_nodes, find_actions,
 * get_action. Each shows only the principal's scope (`policy/policy-scope.ts`):
 * what lies outside it is answered exactly as what does not exist.
 */
import { describeSideEffects, type LoadedAction, type LoadedPack, type PackCatalog } from '@writ/packs'
import type { Principal } from '../auth/index.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { policyNodeOf, type Policy, type PolicyDecision, type PolicyScope } from '../policy/index.js'
import { notFound } from './tool-result.js'
import type { FindActionsArgs, GetActionArgs } from './tool-schemas.js'

export interface CatalogToolDeps { catalog: PackCatalog, fleet: FleetView, policy: Policy, scope: PolicyScope }

/** The first sentence of a description, for a one-line candidate. */
function oneLine(text: string | undefined, max = 160): string {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim()
  const first = /^(.+?[.!?])(\s|$)/.exec(flat)?.[1] ?? flat
  return first.length > max ? `${first.slice(0, max - 1)}…` : first
}

function decisionText(d: PolicyDecision): 'runs at once' | string {
  if (d.decision === 'allow') return 'runs at once'
  if (d.decision === 'require_approval') return `needs ${d.quorum} approval(s) from ${d.approver_groups.join(', ')} (window ${d.ttl})`
  return 'denied'
}

export class CatalogTools {
  constructor(private readonly d: CatalogToolDeps) {}

  /** Nodes in `principal`'s scope. */
  visibleNodes(principal: Principal): FleetNode[] {
    return this.d.fleet.list().filter((n) => this.d.scope.node(principal, policyNodeOf(n)))
  }

  /** The node `ref` names, if it is in scope; else a not_found failure. */
  node(principal: Principal, ref: string): FleetNode {
    const node = this.d.fleet.find(ref)
    if (!node || !this.d.scope.node(principal, policyNodeOf(node))) throw notFound('node', ref)
    return node
  }

  /** The action `id`, if it is in scope; else a not_found failure. */
  action(principal: Principal, id: string): { pack: LoadedPack, action: LoadedAction } {
    const hit = this.d.catalog.lookup(id)
    if (!hit.ok || !this.d.scope.action(principal, { id: hit.action.id, risk: hit.action.spec.risk })) throw notFound('action', id)
    return hit
  }

  listNodes(principal: Principal) {
    const digests = new Map(this.d.catalog.packs.map((p) => [p.id, p.digest]))
    const nodes = this.visibleNodes(principal).map((n) => {
      const stale = n.packs.filter((p) => digests.get(p.id) !== p.digest).map((p) => p.id)
      return {
        name: n.name, id: n.id, online: n.online, last_seen: n.last_seen,
        // Placement as the Nomad API states it; never what the runner claims.
        ...(n.nomad.source === 'nomad'
          ? { ...(n.nomad.node_pool ? { pool: n.nomad.node_pool } : {}), datacenter: n.nomad.datacenter, ...(n.nomad.node_class ? { class: n.nomad.node_class } : {}) }
          : { placement: 'unknown' }),
        ...(n.draining ? { draining: true } : {}),
        packs: n.packs.filter((p) => digests.get(p.id) === p.digest).map((p) => p.id),
        // A pack whose digest differs from the catalog's gets no writs on that node.
        ...(stale.length > 0 ? { packs_not_matching_catalog: stale } : {}),
      }
    })
    return { nodes }
  }

  /** Packs with at least one action in scope, and how many of the principal's nodes have each (at the catalog's digest). */
  listPacks(principal: Principal) {
    const nodes = this.visibleNodes(principal)
    const packs = this.d.catalog.packs.flatMap((pack) => {
      const actions = [...pack.actions.values()].filter((a) => this.d.scope.action(principal, { id: a.id, risk: a.spec.risk }))
      if (actions.length === 0) return []
      return [{
        id: pack.id, name: pack.name, version: pack.version,
        ...(pack.manifest.description ? { summary: oneLine(pack.manifest.description) } : {}),
        actions: actions.length,
        nodes: nodes.filter((n) => n.packs.some((p) => p.id === pack.id && p.digest === pack.digest)).length,
      }]
    })
    return { packs }
  }

  findActions(principal: Principal, q: FindActionsArgs) {
    const node = q.node !== undefined ? this.node(principal, q.node) : undefined
    const words = (q.query ?? '').toLowerCase().split(/\s+/).filter(Boolean)
    const scored: Array<{ matched: number, score: number, item: Record<string, unknown> }> = []
    for (const { pack, action } of this.d.catalog.allActions()) {
      const spec = action.spec
      if (q.pack !== undefined && pack.id !== q.pack) continue
      if (q.risk !== undefined && spec.risk !== q.risk) continue
      if (!this.d.scope.action(principal, { id: action.id, risk: spec.risk })) continue
      let decision: PolicyDecision | undefined
      if (node) {
        if (!node.packs.some((p) => p.id === pack.id && p.digest === pack.digest)) continue
        decision = this.d.policy.evaluate({ action: action.id, risk: spec.risk, node: policyNodeOf(node), principal })
        if (decision.decision === 'deny') continue
      }
      // Matches in the id or title weigh more than in the description or search terms.
      const strong = `${action.id} ${spec.title}`.toLowerCase()
      const weak = `${spec.description ?? ''} ${(spec.search_terms ?? []).join(' ')}`.toLowerCase()
      const matched = words.filter((w) => strong.includes(w) || weak.includes(w)).length
      if (words.length > 0 && matched === 0) continue
      scored.push({
        matched,
        score: words.reduce((s, w) => s + (strong.includes(w) ? 2 : weak.includes(w) ? 1 : 0), 0),
        item: { id: action.id, title: spec.title, risk: spec.risk, summary: oneLine(spec.description ?? spec.title), ...(decision?.decision === 'require_approval' ? { needs_approval: true } : {}) },
      })
    }
    // Actions matching every word, when there are any; else those matching some, best first.
    const all = scored.filter((s) => s.matched === words.length)
    const hits = all.length > 0 ? all : scored
    hits.sort((a, b) => b.score - a.score || String(a.item.id).localeCompare(String(b.item.id)))
    const shown = hits.slice(0, q.limit).map((s) => s.item)
    return { actions: shown, total: hits.length, ...(all.length === 0 && words.length > 1 && hits.length > 0 ? { note: 'no action matches every word; these match some' } : {}), ...(hits.length > shown.length ? { more: `${hits.length - shown.length} more match; narrow the query or raise limit` } : {}) }
  }

  getAction(principal: Principal, q: GetActionArgs) {
    const { pack, action } = this.action(principal, q.action)
    const spec = action.spec
    const nodes = []
    for (const n of this.visibleNodes(principal)) {
      if (!n.packs.some((p) => p.id === pack.id && p.digest === pack.digest)) continue
      const d = this.d.policy.evaluate({ action: action.id, risk: spec.risk, node: policyNodeOf(n), principal })
      if (d.decision === 'deny') continue
      nodes.push({ name: n.name, online: n.online, policy: decisionText(d) })
    }
    const example = spec.examples?.[0]
    return {
      id: action.id, title: spec.title, risk: spec.risk, kind: spec.kind, pack: pack.id, pack_version: pack.version,
      description: (spec.description ?? '').replace(/\s+/g, ' ').trim(),
      side_effects: describeSideEffects(spec.side_effects ?? []),
      args: spec.args.map((a) => ({
        name: a.name, type: a.type, required: a.required,
        ...(a.default !== undefined ? { default: a.default } : {}), ...(a.description ? { description: a.description } : {}),
        ...(a.validation ? { validation: a.validation } : {}), ...(a.sensitive ? { sensitive: true } : {}),
      })),
      ...(example ? { example: { action: action.id, args: example.args ?? {} } } : {}),
      timeout: spec.execution.timeout, output_parser: spec.output.parser,
      nodes,
    }
  }
}
