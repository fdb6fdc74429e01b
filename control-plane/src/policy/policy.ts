/**
 * Policy: ordered rules; the first rule whose every stated condition matches
 * decides. Nothing matched means deny.
 */
import { RISK_ORDER, type Risk } from '@writ/packs'
import type { PolicyMatch, PolicyRule } from '../config.js'
import { anyGlob } from './glob-match.js'
import type { Principal } from '../auth/index.js'

export interface PolicyInput {
  action: string
  risk: Risk
  node: {
    id: string, name: string, datacenter?: string | undefined, node_pool?: string | undefined, node_class?: string | undefined
    /** `unknown` when the Nomad API could not say (with `reason`): see `matches`. */
    source?: 'nomad' | 'unknown' | undefined, reason?: string | undefined
  }
  principal: Pick<Principal, 'id' | 'kind' | 'groups'>
}

export type PolicyDecision =
  | { decision: 'allow', rule: string }
  | { decision: 'require_approval', rule: string, approver_groups: string[], quorum: number, ttl: string, /** An approver may run it alone (break-glass). */ break_glass?: boolean }
  | { decision: 'deny', rule: string | null, reason: string }

export const DEFAULT_DENY_REASON = 'no policy rule allows this action on this node for this principal (default deny)'

export class Policy {
  constructor(private readonly rules: readonly PolicyRule[]) {}

  get size(): number { return this.rules.length }

  /** The rules in evaluation order (read-only), for scope questions (`policy-scope.ts`). */
  get orderedRules(): readonly PolicyRule[] { return this.rules }

  evaluate(input: PolicyInput): PolicyDecision {
    for (const rule of this.rules) {
      const hit = matches(rule.match, input, rule.decision === 'deny')
      if (!hit) continue
      switch (rule.decision) {
        case 'allow': return { decision: 'allow', rule: rule.name }
        case 'require_approval':
          return {
            decision: 'require_approval', rule: rule.name, approver_groups: [...rule.approver_groups], quorum: rule.quorum, ttl: rule.ttl,
            ...(rule.break_glass ? { break_glass: true } : {}),
          }
        case 'deny': return {
          decision: 'deny', rule: rule.name,
          reason: hit === 'unknown' ? `${rule.reason} (the rule names node attributes, and this node's are unknown: ${input.node.reason ?? 'the Nomad API did not say'})` : rule.reason,
        }
      }
    }
    return { decision: 'deny', rule: null, reason: DEFAULT_DENY_REASON }
  }
}

/**
 * Whether the rule applies: `true`, `false`, or `'unknown'` for a deny rule
 * that names node attributes the Nomad API could not state. Unknown
 * attributes never satisfy a rule that grants (a node cannot be let in by
 * what nobody knows about it) and always satisfy one that denies (nor let
 * out of a restriction because Nomad is unreachable): fail closed both ways.
 */
function matches(m: PolicyMatch, input: PolicyInput, denies: boolean): boolean | 'unknown' {
  if (!matchesRequest(m, input)) return false
  const namesAttributes = m.node_pools !== undefined || m.datacenters !== undefined || m.node_classes !== undefined
  if (input.node.source === 'unknown' && namesAttributes) {
    if (!denies) return false
    if (m.nodes && !anyGlob(m.nodes, input.node.name) && !anyGlob(m.nodes, input.node.id)) return false
    return 'unknown'
  }
  return matchesNode(m, input.node)
}

/** The conditions on the node alone. */
export function matchesNode(m: PolicyMatch, node: PolicyInput['node']): boolean {
  if (m.nodes && !anyGlob(m.nodes, node.name) && !anyGlob(m.nodes, node.id)) return false
  if (m.node_pools && !anyGlob(m.node_pools, node.node_pool)) return false
  if (m.datacenters && !anyGlob(m.datacenters, node.datacenter)) return false
  if (m.node_classes && !anyGlob(m.node_classes, node.node_class)) return false
  return true
}

/** Every condition except those on the node: action, risk, and who asks. */
export function matchesRequest(m: PolicyMatch, input: Omit<PolicyInput, 'node'>): boolean {
  const { principal } = input
  if (m.actions && !anyGlob(m.actions, input.action)) return false
  if (m.risk && !m.risk.includes(input.risk)) return false
  if (m.max_risk && RISK_ORDER[input.risk] > RISK_ORDER[m.max_risk]) return false
  if (m.kinds && !m.kinds.includes(principal.kind)) return false
  const byPrincipal = m.principals ? anyGlob(m.principals, principal.id) : undefined
  const byGroup = m.groups ? principal.groups.some((g) => anyGlob(m.groups as string[], g)) : undefined
  // Naming principals and groups in one rule means "either of them".
  if (byPrincipal !== undefined || byGroup !== undefined) {
    if (!(byPrincipal === true || byGroup === true)) return false
  }
  return true
}
