/**
 * A plan as the Slack notices read it: one message per plan (and one for its
 * outcome), built by the same message code as a run's — the plan's id, its
 * action over N nodes, the first target's arguments, its approval.
 */
import type { Run } from '../runs/index.js'
import type { Plan, PlanState } from './plan-schemas.js'

/** The run status whose notice says what became of the plan. */
const NOTICE_STATUS: Record<PlanState['status'], Run['status']> = {
  pending_approval: 'pending_approval', running: 'approved', succeeded: 'succeeded', partially_failed: 'failed', failed: 'failed',
  halted: 'canceled', denied: 'denied', expired: 'expired',
}

export function planAsRun(plan: Plan, state: PlanState): Run {
  const a = plan.approval
  return {
    id: plan.id, status: NOTICE_STATUS[state.status],
    status_reason: state.status_reason, action: plan.action, pack: plan.pack, pack_digest: plan.pack_digest, risk: plan.risk,
    node_id: 'plan', node_name: `${plan.targets.length} nodes`, args: plan.targets[0]?.args ?? {}, reason: plan.reason, requester: plan.requester,
    ...(plan.expected ? { expected: plan.expected } : {}), options: plan.options, policy: plan.targets[0]?.policy ?? { decision: 'allow', rule: null },
    created_at: plan.created_at, updated_at: state.updated_at, created_by_instance: plan.created_by_instance,
    ...(a ? {
      approval: {
        binding: a.binding, approver_groups: a.approver_groups, quorum: a.quorum, expires_at: a.expires_at, approvals: state.approvals,
        ...(state.denial ? { denial: state.denial } : {}), ...(a.passkey_required ? { passkey_required: true } : {}),
      },
    } : {}),
  }
}
