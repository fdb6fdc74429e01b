/**
 * Resolving a plan's targets once, when it is made: the named nodes or the
 * nodes the selector picks (over what the Nomad API says of them), each
 * one's own arguments (`{"$target": "id"}` bound to the node), and policy
 * per target. What cannot run — denied, offline, its attributes unknown to
 * the selector, another pack digest — is listed with the reason and never
 * dispatched; the rest is frozen in rollout order.
 */
import { prepareInvocation, type LoadedAction, type LoadedPack } from '@writ/packs'
import type { Principal } from '../auth/index.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { BadArgs, NodeNotFound, TooManyTargets, ValidationFailed, withDetails } from '../http/index.js'
import type { Policy, PolicyDecision, PolicyScope } from '../policy/index.js'
import { policyNodeOf } from '../policy/index.js'
import type { PlanTarget } from './plan-schemas.js'
import { compileSelector, SelectorError, type SelectableNode } from './selector.js'

export interface Resolution { targets: PlanTarget[], excluded: Array<{ node: string, reason: string }> }

export interface ResolveInput {
  principal: Principal
  pack: LoadedPack
  action: LoadedAction
  args: Record<string, unknown>
  targets: { nodes: string[] } | { selector: string }
  maxTargets: number
}

export interface ResolveDeps {
  fleet: FleetView
  policy: Policy
  /** The agent's scope: a node outside it is answered as one that does not exist (named), or not considered (selected). */
  scope: PolicyScope | undefined
  /** Policy's decision for this principal on `node`, the approver registry's gate applied. */
  decide: (node: FleetNode) => PolicyDecision
}

/** Arguments that may name the target itself, and which of its values they take. */
const TARGET_BINDABLE: Record<string, 'id' | 'name'> = { node_id: 'id', node: 'name', node_name: 'name' }

/** The arguments with `{"$target": …}` bound to `node`; throws a typed 400 for a `$target` an argument cannot take. */
export function bindTargetArgs(args: Record<string, unknown>, node: FleetNode): Record<string, unknown> {
  let out: Record<string, unknown> | undefined
  for (const [name, value] of Object.entries(args)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !('$target' in value)) continue
    const want = (value as { $target: unknown }).$target
    const allowed = TARGET_BINDABLE[name]
    if (allowed === undefined || want !== allowed || Object.keys(value).length !== 1) {
      const takes = Object.entries(TARGET_BINDABLE).map(([a, v]) => `${a}: {"$target": "${v}"}`).join(', ')
      throw withDetails(new ValidationFailed(`argument "${name}" cannot take ${JSON.stringify(value)}: only ${takes} bind to the target node`), { arg: name })
    }
    out ??= { ...args }
    out[name] = want === 'id' ? node.id : node.name
  }
  return out ?? args
}

/** The node as a selector reads it: what the Nomad API says, or why that is unknown. */
export function selectable(node: FleetNode, fleet: FleetView): SelectableNode {
  const n = node.nomad
  if (n.source !== 'nomad') return { id: node.id, unknown: n.reason }
  const detail = fleet.nomadDetail(node.id)
  if ('unknown' in detail) return { id: node.id, unknown: detail.unknown }
  return {
    id: node.id,
    nomad: {
      Name: n.nomad_name, Datacenter: n.datacenter, NodePool: n.node_pool ?? '', NodeClass: n.node_class ?? '', Status: n.nomad_status ?? '',
      Attributes: detail.attributes, Meta: detail.meta,
    },
  }
}

export function resolveTargets(input: ResolveInput, deps: ResolveDeps): Resolution {
  const candidates = pickNodes(input, deps)
  const excluded: Resolution['excluded'] = [...candidates.excluded]
  const targets: PlanTarget[] = []
  for (const node of candidates.nodes) {
    const reported = node.packs.find((p) => p.id === input.pack.id)
    if (!reported) { excluded.push({ node: node.name, reason: `does not report pack ${input.pack.id}` }); continue }
    if (reported.digest !== input.pack.digest) { excluded.push({ node: node.name, reason: `reports pack ${input.pack.id} with another digest than the catalog's` }); continue }
    if (!node.online) { excluded.push({ node: node.name, reason: `offline: no heartbeat since ${node.last_seen}` }); continue }
    const decision = deps.decide(node)
    if (decision.decision === 'deny') { excluded.push({ node: node.name, reason: `denied by policy${decision.rule ? ` rule "${decision.rule}"` : ''}: ${decision.reason}` }); continue }
    const prepared = prepareInvocation(input.action.spec, bindTargetArgs(input.args, node), input.pack.dir)
    if (!prepared.ok) {
      throw withDetails(new BadArgs(input.action.id, `on node ${node.name}: ${prepared.errors.map((e) => e.message).join('; ')}`), { args: prepared.errors, node: node.name })
    }
    targets.push({
      node_id: node.id, node_name: node.name, args: prepared.args,
      policy: decision.decision === 'allow'
        ? { decision: 'allow', rule: decision.rule }
        : { decision: 'require_approval', rule: decision.rule, approver_groups: decision.approver_groups, quorum: decision.quorum, ttl: decision.ttl },
    })
  }
  return { targets, excluded }
}

/** The nodes named or selected, in rollout order (as named; selected ones by name). */
function pickNodes(input: ResolveInput, deps: ResolveDeps): { nodes: FleetNode[], excluded: Resolution['excluded'] } {
  const { principal } = input
  const inScope = (n: FleetNode): boolean => !deps.scope || deps.scope.node(principal, policyNodeOf(n))
  if ('nodes' in input.targets) {
    if (input.targets.nodes.length > input.maxTargets) throw tooMany(input.targets.nodes.length, input.maxTargets)
    const nodes = input.targets.nodes.map((name) => {
      const n = deps.fleet.find(name)
      if (!n || !inScope(n)) throw withDetails(new NodeNotFound(name), { node: name })
      return n
    })
    const ids = new Set(nodes.map((n) => n.id))
    if (ids.size !== nodes.length) throw new ValidationFailed('targets.nodes names one node twice (by name and by id)')
    return { nodes, excluded: [] }
  }
  let selector
  try { selector = compileSelector(input.targets.selector) } catch (err) {
    if (err instanceof SelectorError) throw withDetails(new ValidationFailed(err.message), { field: 'targets.selector', line: err.position.line, column: err.position.column, offset: err.position.offset })
    throw err
  }
  const nodes: FleetNode[] = []
  const excluded: Resolution['excluded'] = []
  for (const n of deps.fleet.list()) {
    if (!inScope(n)) continue
    const v = selector.evaluate(selectable(n, deps.fleet))
    if (v === true) nodes.push(n)
    else if (v !== false) excluded.push({ node: n.name, reason: `the selector cannot be decided for it: ${v.unknown}` })
  }
  if (nodes.length > input.maxTargets) throw tooMany(nodes.length, input.maxTargets)
  return { nodes, excluded }
}

function tooMany(n: number, limit: number): Error {
  return withDetails(new TooManyTargets(n, limit), { targets: n, limit })
}
