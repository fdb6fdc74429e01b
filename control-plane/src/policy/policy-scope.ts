/**
 * A principal's scope: the actions and nodes its policy could ever let it run
 * (at once or after approval). Outside that scope an action or a node is
 * presented to the principal exactly as one that does not exist.
 *
 * - An action is in scope when some node could make policy say allow or
 *   require_approval: walking the rules in order, a rule that matches the
 *   action, its risk and the principal comes before any rule that matches them
 *   and denies on every node. A deny that names nodes (pools, datacenters,
 *   classes) leaves other nodes open, so the walk goes on past it. Whether
 *   such a node exists in the fleet right now does not matter: scope follows
 *   the configuration, not which runners happen to be up.
 * - A node is in scope when policy allows or gates at least one catalog action
 *   on it for the principal (its attributes are known: they come from its
 *   heartbeat and are checked against the same rules).
 *
 * Within scope, a run policy refuses on one particular node is still answered
 * as a policy denial, with the rule's reason.
 */
import type { Risk } from '@writ/packs'
import type { PolicyMatch } from '../config.js'
import { matchesRequest, type Policy, type PolicyInput } from './policy.js'
import { anyGlob } from './glob-match.js'

export interface ScopedAction { id: string, risk: Risk }

type Asker = PolicyInput['principal']

/** A fleet node as policy sees it: its id, name and the Nomad attributes known for it. */
export interface ScopedNode { id: string, name: string, nomad: Omit<PolicyInput['node'], 'id' | 'name'> }

/** The node policy rules are matched against. */
export function policyNodeOf(n: ScopedNode): PolicyInput['node'] {
  return { id: n.id, name: n.name, ...n.nomad }
}

/**
 * Whom the REST API shows only their scope: agents. Operators see the whole
 * catalog and fleet, since they decide runs of any action on any node.
 */
export function restScoped(principal: Asker): boolean {
  return principal.kind === 'agent'
}

/** True when the rule constrains which nodes it applies to (`nodes: ["*"]` alone does not). */
function namesNodes(m: PolicyMatch): boolean {
  const everyNode = m.nodes !== undefined && m.nodes.includes('*')
  return (m.nodes !== undefined && !everyNode) || m.node_pools !== undefined || m.datacenters !== undefined || m.node_classes !== undefined
}

export class PolicyScope {
  private readonly byPrincipal = new Map<string, Map<string, boolean>>()

  /** `actions` is the catalog; a node is in scope through one of them. */
  constructor(private readonly policy: Policy, private readonly actions: () => Iterable<ScopedAction>) {}

  /** Whether any node could let `principal` run `action` (remembered per principal: rules only change with the config). */
  action(principal: Asker, action: ScopedAction): boolean {
    let known = this.byPrincipal.get(principal.id)
    if (!known) this.byPrincipal.set(principal.id, known = new Map())
    let answer = known.get(action.id)
    if (answer === undefined) known.set(action.id, answer = this.couldEverRun(principal, action))
    return answer
  }

  /**
   * Whether policy allows or gates at least one catalog action on `node` for
   * `principal`. A node whose attributes are unknown (Nomad cannot say) is in
   * scope when some attribute it might have would let an action through: scope
   * follows the configuration, and the run itself is then refused by policy
   * with the reason, instead of the node vanishing while Nomad is away.
   */
  node(principal: Asker, node: PolicyInput['node']): boolean {
    for (const a of this.actions()) {
      if (node.source === 'unknown' ? this.couldRunOnUnknown(principal, a, node) : this.policy.evaluate({ action: a.id, risk: a.risk, node, principal }).decision !== 'deny') return true
    }
    return false
  }

  private couldRunOnUnknown(principal: Asker, action: ScopedAction, node: PolicyInput['node']): boolean {
    for (const rule of this.policy.orderedRules) {
      const m = rule.match
      if (!matchesRequest(m, { action: action.id, risk: action.risk, principal })) continue
      if (m.nodes && !anyGlob(m.nodes, node.name) && !anyGlob(m.nodes, node.id)) continue
      if (rule.decision !== 'deny') return true
      // A deny on attributes might not be this node's: the walk goes on, as for a deny that names other nodes.
      if (m.node_pools === undefined && m.datacenters === undefined && m.node_classes === undefined) return false
    }
    return false
  }

  private couldEverRun(principal: Asker, action: ScopedAction): boolean {
    for (const rule of this.policy.orderedRules) {
      if (!matchesRequest(rule.match, { action: action.id, risk: action.risk, principal })) continue
      if (rule.decision !== 'deny') return true
      if (!namesNodes(rule.match)) return false
    }
    return false
  }
}
