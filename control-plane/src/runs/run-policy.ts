/** Policy's decision on a run: gated further by the approver registry, and as the run records it. */
import type { PolicyDecision } from '../policy/index.js'
import type { Run } from './run-record.js'

/** What the published approver registry demands for an action: passkey-signed approvals from `groups`. */
export interface PasskeyGate { quorum: number, groups: string[], rule: string, why: string }

/**
 * Runners refuse a writ for an action the approver registry gates unless
 * it carries passkey-signed approvals, so what policy would let run at once
 * waits for those approvals instead of being dispatched to a certain refusal.
 */
export function gatedByRegistry(d: PolicyDecision, gate: PasskeyGate | undefined): PolicyDecision {
  if (d.decision !== 'allow' || !gate) return d
  return {
    decision: 'require_approval', rule: `${d.rule}, gated by the approver registry's ${gate.rule}: ${gate.why}`,
    approver_groups: gate.groups, quorum: gate.quorum, ttl: DEFAULT_GATE_TTL,
  }
}

/** The approval window of a run the registry gated (policy rules default to the same). */
const DEFAULT_GATE_TTL = '15m'

/** The policy decision as a run records it. */
export function policyOutcome(d: PolicyDecision): Run['policy'] {
  switch (d.decision) {
    case 'allow': return { decision: 'allow', rule: d.rule }
    case 'deny': return { decision: 'deny', rule: d.rule, reason: d.reason }
    case 'require_approval': return { decision: 'require_approval', rule: d.rule, approver_groups: d.approver_groups, quorum: d.quorum, ttl: d.ttl, ...(d.break_glass ? { break_glass: true } : {}) }
  }
}
