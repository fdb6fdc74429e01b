/**
 * Making a plan: validate the request like a run's, resolve and freeze the
 * targets, apply policy per target, build the root, and put `plan.requested`
 * (the root, the frozen list and its digest) on the audit chain before
 * anything is stored or leaves. A plan every target of which policy lets
 * through starts rolling out at once; one with a gated target waits for one
 * decision (plan-approvals.ts). Every refusal is a typed error that records
 * nothing but its audit event and dispatches nothing.
 */
import type { Logger } from 'pino'
import type { LoadedAction, LoadedPack, PackCatalog } from '@writ/packs'
import { planBinding, type MerkleTree } from '@writ/packs/protocol'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import {
  ActionNotFound, EvidenceNotFound, NoTargets, PlanFinished, PlanNotFound, PolicyDenied, requirePlainText, withDetails, CancelForbidden,
} from '../http/index.js'
import { restScoped, type Policy, type PolicyDecision, type PolicyScope } from '../policy/index.js'
import { durationMs } from '../config.js'
import { randomHex, redactArgs, sensitiveArgNames, type RunStore } from '../runs/index.js'
import { resolveTargets } from './plan-targets.js'
import { listDigest, planTree } from './plan-writs.js'
import { resolveRollout } from './rollout-rules.js'
import { FINISHED_PLAN, type Plan, type PlanRequest, type PlanState } from './plan-schemas.js'
import type { PlanStore } from './plan-store.js'
import type { GrantCover, PlanCoverRequest } from '../grants/index.js'

export interface PlanServiceDeps {
  catalog: PackCatalog
  fleet: FleetView
  policy: Policy
  scope: PolicyScope | undefined
  plans: PlanStore
  runStore: RunStore
  audit: AuditChain
  log: Logger
  instanceId: string
  maxTargets: number
  /** Policy for this principal on a node, the approver registry's gate applied (RunService.decision). */
  decide: (principal: Principal, action: { id: string, risk: Plan['risk'] }, node: FleetNode) => PolicyDecision
  /** Whether the approver registry asks for passkeys on this action. */
  passkeyRequired: (action: string, risk: Plan['risk']) => boolean
  /** Called with a plan that waits for people (its record and request event are stored). */
  onPending: (plan: Plan, state: PlanState) => void
  /** Called with a plan ready to roll out (no approval needed), with its tree. */
  onRunnable: (plan: Plan, tree: MerkleTree) => void
  /** Throws 423 when a freeze covers the requester and the action changes state (brakes/). */
  refuseIfFrozen?: ((requester: Plan['requester'], action: string) => void) | undefined
  /** A standing grant covering every gated target (one use each), spent; undefined when none does (grants/). */
  grantCover?: ((req: PlanCoverRequest) => Promise<GrantCover | undefined>) | undefined
}


export function newPlanId(): string {
  return `p${Date.now().toString(36).padStart(9, '0')}${randomHex(4)}`
}

export class PlanService {
  constructor(private readonly d: PlanServiceDeps) {}

  /** Agents see their own plans; operators see every plan. */
  visible(principal: Principal, plan: Pick<Plan, 'requester'>): boolean {
    return principal.kind === 'operator' || plan.requester.id === principal.id
  }

  async get(principal: Principal, id: string): Promise<{ plan: Plan, state: PlanState }> {
    const [plan, state] = await Promise.all([this.d.plans.plan(id), this.d.plans.state(id)])
    if (!plan || !state || !this.visible(principal, plan)) throw new PlanNotFound(id)
    return { plan, state }
  }

  /** `id`: the id the plan gets (an idempotency key claimed it, runs/operations.ts); a fresh one otherwise. */
  async create(principal: Principal, req: PlanRequest, id = newPlanId()): Promise<{ plan: Plan, state: PlanState }> {
    const { catalog } = this.d
    requirePlainText({ reason: req.reason, expected: req.expected })
    for (const id of req.evidence ?? []) {
      const cited = await this.d.runStore.current(id)
      if (!cited || (principal.kind !== 'operator' && cited.run.requester.id !== principal.id)) throw withDetails(new EvidenceNotFound(id), { evidence: id })
    }
    const hit = catalog.lookup(req.action)
    const scoped = this.d.scope && restScoped(principal) ? this.d.scope : undefined
    if (!hit.ok || (scoped && !scoped.action(principal, { id: hit.action.id, risk: hit.action.spec.risk }))) throw new ActionNotFound(req.action)
    const { pack, action } = hit
    const risk = action.spec.risk
    this.d.refuseIfFrozen?.({ id: principal.id, kind: principal.kind }, action.id)
    const resolved = resolveTargets(
      { principal, pack, action, args: req.args, targets: req.targets, maxTargets: this.d.maxTargets },
      { fleet: this.d.fleet, policy: this.d.policy, scope: scoped, decide: (node) => this.d.decide(principal, { id: action.id, risk }, node) },
    )
    if (resolved.targets.length === 0) throw this.nothingToRun(req, resolved.excluded)

    const salt = randomHex(32)
    const frozen = { id, action: action.id, pack_digest: pack.digest, options: req.options ?? {}, salt, targets: resolved.targets }
    const tree = planTree(frozen)
    const root = tree.root.toString('hex')
    const requester = { id: principal.id, kind: principal.kind }
    const gated = this.approvalOf(resolved.targets, { plan_id: id, root, count: resolved.targets.length, reason: req.reason, requester }, action.id, risk)
    // A standing grant that covers every gated target stands in for the decision: the plan rolls out at once.
    const gatedTargets = resolved.targets.filter((t) => t.policy.decision === 'require_approval')
    const cover = gated ? await this.d.grantCover?.({ principal, action: action.id, risk, targets: gatedTargets, decision: gated }) : undefined
    const approval = cover ? undefined : gated
    const grant = cover ? { ...cover.use, uses: gatedTargets.length, signed: cover.signed } : undefined
    try {
      return await this.record(principal, req, { id, pack, action, risk, frozen, tree, root, requester, resolved, approval, grant })
    } catch (err) {
      // Nothing stored, nothing sent: the grant's uses go back.
      await cover?.release().catch((e: unknown) => this.d.log.error({ err: e, plan: id }, 'could not give a grant its uses back'))
      throw err
    }
  }

  /** Puts the plan on the chain, stores it, and hands it on to wait for people or to roll out. */
  private async record(principal: Principal, req: PlanRequest, p: {
    id: string, pack: LoadedPack, action: LoadedAction, risk: Plan['risk'], frozen: Pick<Plan, 'id' | 'action' | 'pack_digest' | 'options' | 'salt' | 'targets'>,
    tree: MerkleTree, root: string, requester: Plan['requester'], resolved: ReturnType<typeof resolveTargets>, approval: Plan['approval'], grant: Plan['grant'],
  }): Promise<{ plan: Plan, state: PlanState }> {
    const { catalog } = this.d
    const { id, pack, action, risk, frozen, tree, root, requester, resolved, approval, grant } = p
    const rollout = resolveRollout(req.rollout, resolved.targets.length)
    const base = {
      ...frozen, pack: pack.id, risk, reason: req.reason, requester, rollout, root, list_digest: listDigest(resolved.targets),
      excluded: resolved.excluded, created_at: new Date().toISOString(), created_by_instance: this.d.instanceId,
      ...(principal.person !== principal.id ? { requester_person: principal.person } : {}),
      ...(req.expected !== undefined ? { expected: req.expected } : {}),
      ...(req.session_id !== undefined ? { session_id: req.session_id } : {}),
      ...(req.evidence !== undefined && req.evidence.length > 0 ? { evidence: req.evidence } : {}),
      ...('selector' in req.targets ? { selector: req.targets.selector } : { nodes: req.targets.nodes }),
      ...(approval ? { approval } : {}),
      ...(grant ? { grant } : {}),
    }
    // Write-ahead: the root, the frozen list and its digest are on the chain before the plan is stored or a writ leaves.
    const requested = await this.d.audit.append({
      type: 'plan.requested', actor: requester, run_id: id, action: action.id,
      data: {
        plan_id: id, root, count: resolved.targets.length, list_digest: base.list_digest, pack_digest: pack.digest, risk, reason: req.reason,
        targets: resolved.targets.map((t) => [t.node_id, t.node_name]),
        args: redactArgs(resolved.targets[0]?.args ?? {}, sensitiveArgNames(catalog, action.id)),
        ...(Object.keys(frozen.options).length > 0 ? { options: frozen.options } : {}),
        ...('selector' in req.targets ? { selector: req.targets.selector } : { nodes: req.targets.nodes }),
        rollout, excluded: resolved.excluded,
        ...(req.expected ? { expected: req.expected } : {}), ...(req.session_id ? { session_id: req.session_id } : {}),
        ...(approval ? { approval: { binding: approval.binding, approver_groups: approval.approver_groups, quorum: approval.quorum, expires_at: approval.expires_at, rule: approval.rule } } : {}),
        ...(grant ? { grant: { id: grant.id, uses: grant.uses, uses_left: grant.uses_left, expires_at: grant.expires_at } } : {}),
      },
    })
    if (grant) {
      await this.d.audit.append({
        type: 'grant.used', actor: requester, run_id: id, action: action.id,
        data: { grant_id: grant.id, plan_id: id, uses: grant.uses, uses_left: grant.uses_left, expires_at: grant.expires_at, approved_by: grant.signed.statement.approvals.map((a) => a.by) },
      })
    }
    const plan: Plan = { ...base, request_hash: requested.hash }
    const now = new Date().toISOString()
    const state: PlanState = approval
      ? { id, status: 'pending_approval', status_reason: `waiting for ${approval.quorum} ${approval.passkey_required ? 'passkey-signed ' : ''}approval(s) from ${approval.approver_groups.join(', ')} until ${approval.expires_at} (${approval.rule})`, approvals: [], updated_at: now }
      : { id, status: 'running', status_reason: `rolling out to ${plan.targets.length} target(s)${grant ? `; ${grant.uses} gated target(s) covered by grant ${grant.id}` : ''}`, approvals: [], updated_at: now }
    await this.d.plans.create(plan, state)
    if (approval) this.d.onPending(plan, state)
    else this.d.onRunnable(plan, tree)
    return { plan, state }
  }

  /** Why a plan with nothing to run is refused: every target denied by policy, or none selected, offline or able to run. */
  private nothingToRun(req: PlanRequest, excluded: Plan['excluded']): Error {
    if (excluded.length > 0 && excluded.every((e) => e.reason.startsWith('denied by policy'))) {
      return withDetails(new PolicyDenied(`every target is denied: ${excluded.slice(0, 5).map((e) => `${e.node}: ${e.reason}`).join('; ')}`), { excluded })
    }
    const what = 'selector' in req.targets ? `the selector matches no node that can run ${req.action}` : `none of the named nodes can run ${req.action}`
    return withDetails(new NoTargets(excluded.length > 0 ? `${what}: ${excluded.slice(0, 5).map((e) => `${e.node}: ${e.reason}`).join('; ')}${excluded.length > 5 ? ` (and ${excluded.length - 5} more)` : ''}` : `${what}`), { excluded })
  }

  /**
   * One decision for every gated target, under the strictest target's rule:
   * the largest quorum (its approver groups), the shortest window, and the
   * approver registry's passkeys where it asks for them.
   */
  private approvalOf(targets: Plan['targets'], bound: Parameters<typeof planBinding>[0], action: string, risk: Plan['risk']): Plan['approval'] {
    let strictest: Plan['targets'][number]['policy'] | undefined
    let ttlMs = Number.POSITIVE_INFINITY
    for (const t of targets) {
      if (t.policy.decision !== 'require_approval') continue
      ttlMs = Math.min(ttlMs, durationMs(t.policy.ttl ?? '15m'))
      if (!strictest || (t.policy.quorum ?? 1) > (strictest.quorum ?? 1)) strictest = t.policy
    }
    if (!strictest) return undefined
    const passkey = this.d.passkeyRequired(action, risk)
    return {
      binding: planBinding(bound), approver_groups: strictest.approver_groups ?? [], quorum: strictest.quorum ?? 1,
      expires_at: new Date(Date.now() + ttlMs).toISOString(), rule: `policy rule "${strictest.rule ?? ''}"`, ...(passkey ? { passkey_required: true } : {}),
    }
  }

  /**
   * Halts a running plan: no new target is dispatched; those in flight
   * finish. Its requester, or an operator in its approver groups (any
   * operator when it needed none), may halt it.
   */
  async halt(principal: Principal, id: string, reason: string): Promise<PlanState> {
    requirePlainText({ reason })
    const { plan, state } = await this.get(principal, id)
    const own = principal.id === plan.requester.id || principal.person === (plan.requester_person ?? plan.requester.id)
    const groups = plan.approval?.approver_groups
    if (!own && groups && !(principal.kind === 'operator' && principal.groups.some((g) => groups.includes(g)))) {
      throw withDetails(new CancelForbidden(id, plan.requester.id, groups.join(', '), principal.id), { plan_id: id, approver_groups: groups })
    }
    if (FINISHED_PLAN.has(state.status) || state.halt) throw new PlanFinished(id, state.halt ? 'halted' : state.status)
    const at = new Date().toISOString()
    let mine = false
    const updated = await this.d.plans.updateState(id, (s) => {
      if (FINISHED_PLAN.has(s.status) || s.halt) return undefined
      mine = true
      // A plan still waiting for people ends here; a running one ends once its targets in flight finish.
      return s.status === 'pending_approval'
        ? { ...s, status: 'halted', status_reason: `halted by ${principal.id} before any approval: ${reason}`, halt: { by: principal.id, reason, at }, finished_at: at }
        : { ...s, status_reason: `halting (by ${principal.id}: ${reason}); targets in flight finish`, halt: { by: principal.id, reason, at } }
    })
    if (!updated) throw new PlanNotFound(id)
    if (!mine) throw new PlanFinished(id, updated.state.halt ? 'halted' : updated.state.status)
    await this.d.audit.append({ type: 'plan.halted', actor: { id: principal.id, kind: principal.kind }, run_id: id, action: plan.action, data: { plan_id: id, reason, requested_by: principal.id } })
    // Halted before any approval: it ends here, with nothing dispatched (a running one ends once its targets in flight finish).
    if (updated.state.status === 'halted') {
      await this.d.audit.append({
        type: 'plan.finished', actor: CONTROL_PLANE_ACTOR, run_id: id, action: plan.action,
        data: { plan_id: id, status: 'halted', succeeded: 0, failed: 0, targets: plan.targets.length, not_dispatched: plan.targets.length > 1 ? `0-${plan.targets.length - 1}` : '0' },
      })
    }
    return updated.state
  }

  /** States this principal may see, newest first. */
  async list(principal: Principal, filter: { status?: PlanState['status'] | undefined, session_id?: string | undefined }, limit: number): Promise<Array<{ plan: Plan, state: PlanState }>> {
    const out: Array<{ plan: Plan, state: PlanState }> = []
    for (const state of this.d.plans.list()) {
      if (out.length >= limit) break
      if (filter.status !== undefined && state.status !== filter.status) continue
      const plan = await this.d.plans.plan(state.id).catch(() => undefined)
      if (!plan || !this.visible(principal, plan)) continue
      if (filter.session_id !== undefined && plan.session_id !== filter.session_id) continue
      out.push({ plan, state })
    }
    return out
  }
}

