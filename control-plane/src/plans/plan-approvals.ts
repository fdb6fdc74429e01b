/**
 * One decision for a whole plan, under the same rules as a run's: operators
 * in the approver groups, never the requester (nor another principal of the
 * same person), distinct people up to the quorum, one deny ends it, the
 * window closes (`expired`), and where the approver registry asks, each
 * approval carries the approver's passkey over the plan binding — which
 * covers the root, so it covers exactly the frozen targets. A decision is a
 * revision-checked update of the plan's state: two people deciding at once
 * yield one outcome.
 */
import type { Logger } from 'pino'
import type { PasskeyAssertion } from '@writ/packs/protocol'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import {
  AlreadyApproved, ApprovalExpired, BindingMismatch, Forbidden, NotAnApprover, NotPending, PasskeyRejected, PasskeyRequired, PlanNotFound, SelfApproval,
  requirePlainText, withDetails,
} from '../http/index.js'
import type { Passkeys } from '../passkeys/index.js'
import type { Decision } from '../runs/index.js'
import type { Plan, PlanState } from './plan-schemas.js'
import type { PlanStore } from './plan-store.js'

export type PlanDecisionInput =
  | { decision: 'approve', comment?: string | undefined, binding?: string | undefined, passkey?: PasskeyAssertion | undefined }
  | { decision: 'deny', reason: string, binding?: string | undefined }

export interface PlanApprovalsDeps {
  plans: PlanStore
  audit: AuditChain
  passkeys: Passkeys | undefined
  log: Logger
  instanceId: string
  planUrl: (id: string) => string
  /** The rollout takes over a plan whose quorum is met. */
  onApproved: (plan: Plan) => void
  /** Slack hears of the outcome. */
  onDecided: (plan: Plan, state: PlanState) => void
  now?: () => number
}

export class PlanApprovals {
  constructor(private readonly d: PlanApprovalsDeps) {}

  private now(): number { return (this.d.now ?? Date.now)() }

  /** Why `principal` may not make this decision now, or undefined. */
  private refusal(principal: Principal, plan: Plan, state: PlanState, input: PlanDecisionInput): Error | undefined {
    const a = plan.approval
    if (state.status !== 'pending_approval' || !a) {
      const by = state.denial ? ` by ${state.denial.by}` : state.approvals.length ? ` by ${state.approvals.map((x) => x.by).join(', ')}` : ''
      return withDetails(new NotPending(plan.id, `${state.status}${by}`), { plan_id: plan.id, status: state.status })
    }
    const requesterPerson = plan.requester_person ?? plan.requester.id
    if (principal.id === plan.requester.id || principal.person === requesterPerson) {
      return withDetails(new SelfApproval(plan.id, principal.id === plan.requester.id ? principal.id : `${plan.requester.id} (${requesterPerson})`), { plan_id: plan.id })
    }
    if (!(principal.kind === 'operator' && principal.groups.some((g) => a.approver_groups.includes(g)))) {
      return withDetails(new NotAnApprover(plan.id, a.approver_groups.join(', '), principal.id), { plan_id: plan.id, approver_groups: a.approver_groups })
    }
    if (input.binding !== undefined && input.binding !== a.binding) {
      return withDetails(new BindingMismatch(input.binding.slice(0, 16), plan.id, a.binding.slice(0, 16)), { plan_id: plan.id, binding: a.binding })
    }
    if (input.decision === 'approve' && state.approvals.some((x) => x.by === principal.id || x.person === principal.person)) {
      return withDetails(new AlreadyApproved(principal.id, plan.id, a.quorum - state.approvals.length), { plan_id: plan.id })
    }
    return undefined
  }

  private async checkedPasskey(principal: Principal, plan: Plan, state: PlanState, input: Extract<PlanDecisionInput, { decision: 'approve' }>): Promise<PasskeyAssertion | undefined> {
    const a = plan.approval
    if (state.status !== 'pending_approval' || !a || Date.parse(a.expires_at) <= this.now()) return undefined
    const refusal = this.refusal(principal, plan, state, input)
    if (refusal) throw refusal
    const need = this.d.passkeys?.requirement(plan.action, plan.risk)
    if (!input.passkey) {
      if (need) throw withDetails(new PasskeyRequired(plan.id, need.why, this.d.planUrl(plan.id)), { plan_id: plan.id, binding: a.binding })
      return undefined
    }
    if (!this.d.passkeys) throw new PasskeyRejected('passkeys are not configured on this control plane; approve without one')
    await this.d.passkeys.verifyApproval(principal, { id: plan.id, action: plan.action, risk: plan.risk, requester: plan.requester, binding: a.binding }, input.passkey)
    return input.passkey
  }

  async decide(principal: Principal, plan: Plan, input: PlanDecisionInput): Promise<PlanState> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators decide plans; agents never approve')
    requirePlainText(input.decision === 'deny' ? { reason: input.reason } : { comment: input.comment })
    const known = await this.d.plans.state(plan.id)
    if (!known) throw new PlanNotFound(plan.id)
    const passkey = input.decision === 'approve' ? await this.checkedPasskey(principal, plan, known, input) : undefined
    const now = this.now()
    const at = new Date(now).toISOString()
    let refusal: Error | undefined
    let outcome: 'approved' | 'approval_recorded' | 'denied' | 'expired' | undefined
    const a = plan.approval
    const updated = await this.d.plans.updateState(plan.id, (s) => {
      refusal = undefined
      outcome = undefined
      const expired = this.expiredNow(plan, s, now)
      if (expired) { outcome = 'expired'; return expired }
      refusal = this.refusal(principal, plan, s, input)
      if (refusal || !a) return undefined
      const decision: Decision = { by: principal.id, person: principal.person, at, binding: a.binding }
      if (input.decision === 'deny') {
        outcome = 'denied'
        return { ...s, status: 'denied', status_reason: `denied by ${principal.id}: ${input.reason}`, denial: { ...decision, reason: input.reason }, finished_at: at }
      }
      const approvals = [...s.approvals, { ...decision, ...(input.comment ? { comment: input.comment } : {}), ...(passkey ? { passkey } : {}) }]
      const counted = a.passkey_required ? approvals.filter((x) => x.passkey).length : approvals.length
      if (counted >= a.quorum) {
        outcome = 'approved'
        // The deciding instance rolls it out; its lease lets another take over if it stops.
        return { ...s, approvals, approved_at: at, status: 'running', status_reason: `approved by ${approvals.map((x) => x.by).join(', ')}; rolling out to ${plan.targets.length} target(s)` }
      }
      outcome = 'approval_recorded'
      return { ...s, approvals, status_reason: `${counted} of ${a.quorum} approvals (${approvals.map((x) => x.by).join(', ')}); waiting until ${a.expires_at}` }
    })
    if (!updated) throw new PlanNotFound(plan.id)
    if (outcome === 'expired') {
      await this.recordExpiry(plan, updated.state)
      throw withDetails(new ApprovalExpired(plan.id, a?.expires_at ?? ''), { plan_id: plan.id, status: 'expired' })
    }
    if (refusal) throw refusal
    const actor = { id: principal.id, kind: principal.kind }
    const base = { actor, run_id: plan.id, action: plan.action }
    if (outcome === 'denied') {
      await this.d.audit.append({ ...base, type: 'plan.denied', data: { plan_id: plan.id, reason: (input as { reason: string }).reason, person: principal.person, binding: a?.binding } })
      this.d.onDecided(plan, updated.state)
      return updated.state
    }
    // On the chain before the rollout sends anything.
    await this.d.audit.append({
      ...base, type: 'plan.approval_granted',
      data: {
        plan_id: plan.id, person: principal.person, binding: a?.binding, root: plan.root, approvals_so_far: updated.state.approvals.length, quorum: a?.quorum,
        quorum_met: outcome === 'approved', ...(input.decision === 'approve' && input.comment ? { comment: input.comment } : {}), ...(passkey ? { passkey: passkey.credential_id } : {}),
      },
    })
    if (outcome === 'approved') {
      this.d.onApproved(plan)
      this.d.onDecided(plan, updated.state)
    }
    return updated.state
  }

  private expiredNow(plan: Plan, s: PlanState, now: number): PlanState | undefined {
    const a = plan.approval
    if (s.status !== 'pending_approval' || !a || Date.parse(a.expires_at) > now) return undefined
    const at = new Date(now).toISOString()
    return { ...s, status: 'expired', finished_at: at, status_reason: `no decision by ${a.expires_at} (${s.approvals.length} of ${a.quorum} approvals); nothing was dispatched` }
  }

  private async recordExpiry(plan: Plan, state: PlanState): Promise<void> {
    await this.d.audit.append({ type: 'plan.expired', actor: CONTROL_PLANE_ACTOR, run_id: plan.id, action: plan.action, data: { plan_id: plan.id, expires_at: plan.approval?.expires_at, approvals: state.approvals.length } })
    this.d.onDecided(plan, state)
  }

  /** Expires waiting plans whose window closed; only the instance whose update wins records it. */
  async sweep(): Promise<void> {
    const now = this.now()
    for (const s of this.d.plans.list()) {
      if (s.status !== 'pending_approval') continue
      const plan = await this.d.plans.plan(s.id).catch(() => undefined)
      if (!plan?.approval || Date.parse(plan.approval.expires_at) > now) continue
      let expired: PlanState | undefined
      await this.d.plans.updateState(s.id, (cur) => (expired = this.expiredNow(plan, cur, now)))
      if (expired) await this.recordExpiry(plan, expired)
    }
  }
}
