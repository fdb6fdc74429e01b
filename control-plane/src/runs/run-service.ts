/**
 * The path every run request takes: validate against the authoritative
 * catalog → find the node → check its pack digest → policy → record → audit →
 * sign and dispatch. Every refusal is a coded error and, since the caller is
 * authenticated, an audit event; none of them dispatches anything.
 */
import { PackCatalog } from '@writ/packs'
import type { ApprovalRef, SignedGrant } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { type AuditChain, type AuditEventBody, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Dispatcher } from './dispatcher.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { EvidenceNotFound, PolicyDenied, RunNotFound, requirePlainText, withDetails } from '../http/index.js'
import type { Metrics } from '../metrics.js'
import type { Policy, PolicyDecision, PolicyScope } from '../policy/index.js'
import { durationMs } from '../config.js'
import type { Principal } from '../auth/index.js'
import { runBinding, type Run } from './run-record.js'
import { newRunId, randomHex } from './run-ids.js'
import type { RunStore } from './run-store.js'
import type { RunAdmission } from './run-admission.js'
import { admitApproved, holdApproved, type RunBrakes } from './run-brakes.js'
import type { RunRequest } from './run-schemas.js'
import { presentRun, redactArgs, sensitiveArgNames, withoutSalt } from './sensitive-args.js'
import { cancelRun } from './run-cancel.js'
import { gatedByRegistry, policyOutcome, type PasskeyGate } from './run-policy.js'
export type { PasskeyGate } from './run-policy.js'
import { dispatchFields, sendWrit } from './run-sending.js'
import { systemRun } from './run-system.js'
import { checkedRequest, requestedEvent } from './run-request.js'

export interface RunServiceDeps {
  catalog: PackCatalog, fleet: FleetView, policy: Policy, store: RunStore, audit: AuditChain, dispatcher: Dispatcher,
  /** An agent's scope: an action or node outside it is refused exactly as one that does not exist. */
  scope?: PolicyScope | undefined
  metrics: Metrics, log: Logger, instanceId: string, lostGraceMs: number,
  /** The portal page of a run, shown with runs that wait for approval. */
  runUrl: (runId: string) => string
  /**
   * Called once a run starts waiting for approval (its record and request
   * event are stored). Awaited: the impact preview may bind the state it
   * read into the approval first (a bounded wait), so the run the requester
   * gets back, and every page and notice, shows the binding approvers sign.
   */
  onPendingApproval?: (run: Run) => void | Promise<void>
  /** Called once a run that waited for approval is canceled (its approvers were told it waits; now they are told it does not). */
  onCanceledWhilePending?: (run: Run) => void
  /** Room for new runs: the bound on unfinished runs and the per-requester cap on runs waiting for approval. */
  admission: RunAdmission
  /** Operator groups that may cancel any run (`runs.cancel_any_groups`). */
  cancelAnyGroups: readonly string[]
  /** How many passkey-signed approvals the published approver registry demands for an action, if any. */
  passkeyRequirement?: (action: string, risk: Run['risk']) => PasskeyGate | undefined
  /**
   * A standing grant that covers a request policy holds for approval, with
   * one of its uses spent (grants/), or undefined: the run then waits.
   */
  grantCover?: (req: { principal: Principal, run: Run, decision: Extract<PolicyDecision, { decision: 'require_approval' }> }) => Promise<GrantedCover | undefined>
  /** The freeze and the budgets (brakes/): asked before a change-making request is accepted and before any writ leaves. */
  brakes?: RunBrakes | undefined
}

/** What a grant that covers a run gives it: the answer's `grant` and the signed statement its writ carries. */
export interface GrantedCover { use: NonNullable<Run['grant']>, signed: SignedGrant, release(): Promise<void> }

/** A read-only run the control plane itself asks for (the approver's impact preview). */
export interface SystemRunRequest { action: string, node: string, args: Record<string, unknown>, reason: string, session_id?: string }


export class RunService {
  /** Runs that are not in the run store: a plan's targets (plans/). */
  private otherRuns: ((principal: Principal, id: string) => Promise<Run | undefined>) | undefined

  constructor(private readonly d: RunServiceDeps) {}

  /** Answers for runs the store does not hold (each target of a plan is also a run). */
  resolveOtherRuns(find: (principal: Principal, id: string) => Promise<Run | undefined>): void { this.otherRuns = find }

  /** Agents see their own runs; operators see every run. */
  visible(principal: Principal, run: Pick<Run, 'requester'>): boolean {
    return principal.kind === 'operator' || run.requester.id === principal.id
  }

  /** `run` as a caller may read it (sensitive arguments redacted). */
  present(run: Run): Run {
    const shown = presentRun(run, this.d.catalog)
    if (!run.approval) return shown
    return { ...shown, approval: { ...run.approval, url: this.d.runUrl(run.id), approvals_so_far: run.approval.approvals.length } }
  }

  /**
   * `present(run)` as JSON when it can be the record's stored bytes less the
   * binding salt (nothing redacted, nothing added), so a reply need not
   * serialize the run again; undefined otherwise.
   */
  presentedJson(run: Run): string | undefined {
    if (run.approval || redactArgs(run.args, sensitiveArgNames(this.d.catalog, run.action)) !== run.args) return undefined
    const stored = this.d.store.serialized(run)
    return stored === undefined ? undefined : withoutSalt(stored, run)
  }

  async get(principal: Principal, id: string): Promise<Run> {
    const hit = await this.d.store.get(id)
    if (!hit) {
      const other = await this.otherRuns?.(principal, id)
      if (other) return other
    }
    if (!hit || !this.visible(principal, hit.run)) throw new RunNotFound(id)
    return hit.run
  }

  /** `opts.runId`: the id the run gets (an idempotency key claimed it, operations.ts); a fresh one otherwise. */
  async submit(principal: Principal, req: RunRequest, opts: { runId?: string } = {}): Promise<Run> {
    const { catalog, fleet, policy } = this.d
    const actor = { id: principal.id, kind: principal.kind }
    // What an approver reads is what the agent sent: no text that a terminal or page would show otherwise.
    requirePlainText({ reason: req.reason, expected: req.expected })
    for (const id of req.evidence ?? []) {
      const cited = await this.d.store.current(id)
      if (!cited || !this.visible(principal, cited.run)) throw withDetails(new EvidenceNotFound(id), { evidence: id })
    }
    // Thrown errors reach the one error handler, which audits them for the authenticated caller.
    const { pack, action, node, args } = checkedRequest({ catalog, fleet, scope: this.d.scope }, principal, req)
    // A freeze refuses before anything is recorded: the refusal is only its audit event.
    this.d.brakes?.refuseIfFrozen(actor, action.id)

    const gate = this.d.passkeyRequirement?.(action.id, action.spec.risk)
    const decision = gatedByRegistry(policy.evaluate({ action: action.id, risk: action.spec.risk, node: { id: node.id, name: node.name, ...node.nomad }, principal }), gate)
    const now = new Date().toISOString()
    const run: Run = {
      id: opts.runId ?? newRunId(), status: 'pending_approval', status_reason: '', action: action.id, pack: pack.id, pack_digest: pack.digest,
      risk: action.spec.risk, node_id: node.id, node_name: node.name, args, reason: req.reason, requester: actor,
      requester_person: principal.person,
      ...(req.session_id !== undefined ? { session_id: req.session_id } : {}),
      ...(req.expected !== undefined ? { expected: req.expected } : {}),
      ...(req.evidence !== undefined && req.evidence.length > 0 ? { evidence: req.evidence } : {}),
      options: req.options ?? {}, binding_salt: randomHex(32),
      policy: policyOutcome(decision), created_at: now, updated_at: now, created_by_instance: this.d.instanceId,
    }
    const requested = requestedEvent(run, catalog)

    if (decision.decision === 'deny') {
      run.status = 'denied'
      run.status_reason = `denied by policy${decision.rule ? ` rule "${decision.rule}"` : ''}: ${decision.reason}`
      run.finished_at = now
      run.request_hash = (await this.d.audit.append(requested)).hash
      await this.d.store.create(run)
      this.d.metrics.runs.inc({ status: 'denied' })
      throw withDetails(new PolicyDenied(decision.reason), { run_id: run.id, rule: decision.rule })
    }
    if (decision.decision === 'require_approval' && node.online) {
      const cover = await this.d.grantCover?.({ principal, run, decision })
      if (cover) {
        // A grant's run is a dispatch like any other: it spends the budget, and a spent budget gives the grant's use back.
        const receipt = await this.d.brakes?.charge(run).catch(async (err: unknown) => { await cover.release(); throw err })
        try {
          return await this.dispatchGranted(run, requested, cover)
        } catch (err) {
          if (receipt && (err as { code?: unknown }).code === 'WRIT_ERR_TOO_MANY_ACTIVE_RUNS') await this.d.brakes?.refund(receipt)
          throw err
        }
      }
    }
    if (decision.decision === 'require_approval') {
      // Before anything is recorded: a refusal stores nothing but its audit event.
      const release = this.d.admission.reserve(principal.id)
      try { return await this.recordPending(run, requested, decision, gate) } finally { release() }
    }
    if (!node.online) return this.recordOffline(run, node, requested)
    // Budgets are spent by dispatches only, so the charge is the last check; a spent budget records nothing.
    const receipt = await this.d.brakes?.charge(run)
    try {
      return await this.dispatch(run, requested)
    } catch (err) {
      // A full run store refuses before anything is recorded or sent: that dispatch did not happen.
      if (receipt && (err as { code?: unknown }).code === 'WRIT_ERR_TOO_MANY_ACTIVE_RUNS') await this.d.brakes?.refund(receipt)
      throw err
    }
  }

  /**
   * A run a standing grant covers: its request event names the grant, a
   * `grant.used` event follows it, both on the chain before the writ (which
   * carries the grant's signed statement) leaves.
   */
  private async dispatchGranted(run: Run, requested: AuditEventBody, cover: GrantedCover): Promise<Run> {
    run.grant = cover.use
    requested.data = { ...requested.data, grant: cover.use }
    run.request_hash = (await this.d.audit.append(requested)).hash
    await this.d.audit.append({
      type: 'grant.used', actor: { id: run.requester.id, kind: run.requester.kind }, run_id: run.id, node: run.node_name, action: run.action,
      data: { grant_id: cover.use.id, uses_left: cover.use.uses_left, expires_at: cover.use.expires_at, approved_by: cover.signed.statement.approvals.map((a) => a.by) },
    })
    return this.dispatch(run, undefined, cover.signed, `covered by grant ${cover.use.id}; writ sent to ${run.node_name}`)
  }

  /** Stores a run that waits for approval, with its approval state, after its request event. */
  private async recordPending(
    run: Run, requested: AuditEventBody, decision: Extract<PolicyDecision, { decision: 'require_approval' }>, gate: PasskeyGate | undefined,
  ): Promise<Run> {
    const expiresAt = new Date(Date.parse(run.created_at) + durationMs(decision.ttl)).toISOString()
    // Runners will demand the registry's quorum of passkey signatures; ask for no fewer here.
    const passkeyQuorum = gate?.quorum
    const quorum = Math.max(decision.quorum, passkeyQuorum ?? 0)
    run.status_reason = `waiting for ${quorum} ${passkeyQuorum ? 'passkey-signed ' : ''}approval(s) from ${decision.approver_groups.join(', ')} until ${expiresAt} (policy rule "${decision.rule}")`
    run.approval = {
      binding: runBinding(run), approver_groups: decision.approver_groups,
      quorum, expires_at: expiresAt, approvals: [], ...(passkeyQuorum ? { passkey_required: true } : {}),
    }
    requested.data = { ...requested.data, approval: { binding: run.approval.binding, approver_groups: decision.approver_groups, quorum, expires_at: expiresAt, ...(passkeyQuorum ? { passkey_required: true } : {}) } }
    run.request_hash = (await this.d.audit.append(requested)).hash
    await this.d.store.create(run)
    this.d.metrics.runs.inc({ status: 'pending_approval' })
    await this.d.onPendingApproval?.(run)
    return (await this.d.store.get(run.id))?.run ?? run
  }

  /**
   * Records the run as dispatched, sends the signed writ, and records the
   * runner's answer. `requested`, when given, is audited alongside the record:
   * both are stored before the writ leaves.
   */
  async dispatch(run: Run, requested?: AuditEventBody, grant?: SignedGrant, why = `writ sent to ${run.node_name}`): Promise<Run> {
    // A new run needs room in the store; once its record is stored, the store counts it.
    const release = this.d.admission.reserve()
    try {
      Object.assign(run, dispatchFields(run, why, this.d))
      // The record exists before the writ leaves, so a fast result always finds it.
      const [requestEvent] = await Promise.all([requested ? this.d.audit.append(requested) : undefined, this.d.store.create(run)])
      if (requestEvent) run.request_hash = requestEvent.hash
    } finally { release() }
    return sendWrit(this.d, run, [], grant)
  }

  /**
   * Claims an approved run (approved → dispatched, revision-checked, so exactly
   * one instance sends its writ) and dispatches it with its approvals. `ahead`
   * is written alongside the claim: the approval's audit event, which must be on
   * the chain before the writ leaves; `afterClaim` runs only if this instance
   * won the claim, before the writ leaves. Resolves with the run as it then is.
   */
  async dispatchApproved(id: string, opts: { ahead?: Promise<unknown>, afterClaim?: (run: Run) => Promise<unknown> } = {}): Promise<Run | undefined> {
    const admitted = this.d.brakes ? await admitApproved(this.d.brakes, this.d.store, id) : undefined
    if (admitted && 'held' in admitted) {
      await opts.ahead
      return holdApproved(this.d.store, this.d.audit, id, admitted.held)
    }
    let claimed: Run | undefined
    const [current] = await Promise.all([
      this.d.store.update(id, (r) => {
        if (r.status !== 'approved') return undefined
        claimed = { ...r, ...dispatchFields(r, `approved; writ sent to ${r.node_name}`, this.d) }
        return claimed
      }),
      opts.ahead,
    ])
    if (!claimed) {
      // Another instance dispatched it (and spent its budget), or it was canceled meanwhile.
      if (admitted?.receipt) await this.d.brakes?.refund(admitted.receipt)
      return current
    }
    await opts.afterClaim?.(claimed)
    const approvals: ApprovalRef[] = (claimed.approval?.approvals ?? []).map((a) => ({
      by: a.by, at: a.at, binding: a.binding, ...(a.passkey ? { passkey: a.passkey } : {}), ...(a.break_glass ? { break_glass: true as const } : {}),
    }))
    return sendWrit(this.d, claimed, approvals)
  }

  /**
   * A low-risk read the control plane runs for itself (impact previews): no
   * policy (it is not an agent's request), but the same catalog, digest and
   * argument checks, and audited like any run.
   */
  async submitAsSystem(req: SystemRunRequest): Promise<Run> {
    const { run, node, requested } = systemRun(this.d, req)
    if (!node.online) return this.recordOffline(run, node, requested)
    return this.dispatch(run, requested)
  }

  /** A run for a node without a recent heartbeat ends at once as `node_offline`, saying since when. */
  private async recordOffline(run: Run, node: FleetNode, requested: AuditEventBody): Promise<Run> {
    run.status = 'node_offline'
    run.status_reason = `node ${node.name} has not sent a heartbeat since ${node.last_seen}`
    run.finished_at = run.created_at
    run.request_hash = (await this.d.audit.append(requested)).hash
    // A finished record always has its outcome on the chain, as when no runner answers a writ.
    await this.d.audit.append({ actor: CONTROL_PLANE_ACTOR, run_id: run.id, node: run.node_name, action: run.action, type: 'run.node_offline', data: { message: run.status_reason } })
    await this.d.store.create(run)
    this.d.metrics.runs.inc({ status: 'node_offline' })
    return run
  }

  /** Cancels a run this principal may cancel (run-cancel.ts): before dispatch it ends here; after, its runner is asked. */
  async cancel(principal: Principal, id: string): Promise<Run> {
    return cancelRun(this.d, principal, await this.get(principal, id), () => this.cancel(principal, id))
  }
}
