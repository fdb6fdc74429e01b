/**
 * The one place a run waiting for a person is decided: REST, the CLI and the
 * portal all call `decide`. A decision is a revision-checked update of the run
 * record, so two people deciding at the same moment yield exactly one outcome;
 * the other gets a typed answer. Approving binds to the run's binding digest,
 * is used once, counts distinct people from the named groups, never the
 * requester; one deny ends the run. A run reaching its quorum is dispatched at
 * once, with its approvals in the writ.
 */
import type { Logger } from 'pino'
import type { PasskeyAssertion } from '@writ/packs/protocol'
import { type AuditChain, type AuditEventBody, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import {
  AlreadyApproved, ApprovalExpired, BindingMismatch, BindingOutdated, Forbidden, NotAnApprover, NotPending, PasskeyRejected, PasskeyRequired, RunNotFound, SelfApproval,
  requirePlainText, withDetails,
} from '../http/index.js'
import type { Passkeys } from '../passkeys/index.js'
import type { Metrics } from '../metrics.js'
import type { ApprovalNotifier } from '../notify/index.js'
import { isTerminal, type Decision, type Run, type RunService, type RunStore, type RunSummary } from '../runs/index.js'

export type DecisionInput =
  | { decision: 'approve', comment?: string | undefined, binding?: string | undefined, /** The approver's passkey over the binding. */ passkey?: PasskeyAssertion | undefined }
  | { decision: 'deny', reason: string, binding?: string | undefined }

/** What an agent or a page is told about a run waiting for people. */
export interface ApprovalSummary {
  url: string
  expires_at: string
  quorum: number
  approvals_so_far: number
  approver_groups: string[]
  binding: string
  /** Approvals must be signed with the approver's published passkey. */
  passkey_required: boolean
}

export interface PendingFilter { node?: string | undefined, action?: string | undefined, requester?: string | undefined, approver?: Principal | undefined }

/** One page of the runs waiting for approval: how many match in all, and where the next page starts (null on the last). */
export interface PendingPage { runs: RunSummary[], total: number, next_cursor: string | null }

export interface ApprovalServiceDeps {
  store: RunStore
  audit: AuditChain
  runs: RunService
  metrics: Metrics
  notifier: ApprovalNotifier
  log: Logger
  /** The portal page of a run (what Slack links to). */
  runUrl: (runId: string) => string
  /** Passkey-signed approvals, when configured. */
  passkeys?: Passkeys | undefined
  now?: () => number
}

/** The position of the first run in `newestFirst` whose id sorts before `cursor`. */
function firstOlderThan(newestFirst: RunSummary[], cursor: string): number {
  let lo = 0
  let hi = newestFirst.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((newestFirst[mid] as RunSummary).id >= cursor) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class ApprovalService {
  constructor(private readonly d: ApprovalServiceDeps) {}

  private now(): number { return (this.d.now ?? Date.now)() }

  summary(run: Pick<Run, 'id' | 'approval'>): ApprovalSummary | undefined {
    const a = run.approval
    if (!a) return undefined
    return {
      url: this.d.runUrl(run.id), expires_at: a.expires_at, quorum: a.quorum, approvals_so_far: a.approvals.length, approver_groups: a.approver_groups, binding: a.binding,
      passkey_required: a.passkey_required ?? false,
    }
  }

  /** What the published approver registry demands of approving `run` now, or undefined. */
  passkeyRequirement(run: Pick<Run, 'action' | 'risk'>) {
    return this.d.passkeys?.requirement(run.action, run.risk)
  }

  /**
   * The approver's passkey, checked against the published registry before
   * the decision is recorded (the check is asynchronous; the run's binding
   * never changes, so checking first is sound). Throws a typed error when the
   * run needs a passkey and none, or a bad one, came.
   */
  private async checkedPasskey(principal: Principal, runId: string, input: Extract<DecisionInput, { decision: 'approve' }>): Promise<PasskeyAssertion | undefined> {
    const hit = await this.d.store.get(runId)
    if (!hit) throw new RunNotFound(runId)
    const r = hit.run
    if (r.status !== 'pending_approval' || !r.approval || Date.parse(r.approval.expires_at) <= this.now()) return undefined
    // Who may decide is said first: a passkey cannot make the requester an approver.
    const refusal = this.refusal(principal, r, input)
    if (refusal) throw refusal
    const need = this.passkeyRequirement(r)
    if (!input.passkey) {
      if (need) throw withDetails(new PasskeyRequired(r.id, need.why, this.d.runUrl(r.id)), { run_id: r.id, binding: r.approval.binding })
      return undefined
    }
    if (!this.d.passkeys) throw new PasskeyRejected('passkeys are not configured on this control plane; approve without one')
    await this.d.passkeys.verifyApproval(principal, { id: r.id, action: r.action, risk: r.risk, requester: r.requester, binding: r.approval.binding }, input.passkey)
    return input.passkey
  }

  /** Whether `p` may decide runs needing approvers from `groups`. */
  static isApprover(p: Principal, groups: readonly string[]): boolean {
    return p.kind === 'operator' && p.groups.some((g) => groups.includes(g))
  }

  /** Runs waiting for approval, newest first; with `approver`, only those that principal could decide. */
  pending(filter: PendingFilter, limit: number): RunSummary[] {
    return this.page(filter, limit).runs
  }

  /**
   * A page of the runs waiting for approval, newest first, starting after
   * `cursor` (the last id of the page before; ids are time-ordered, so runs
   * arriving meanwhile never shift later pages). With `approver`, only those
   * that principal could decide: in one of its groups, and not its own.
   * Lists page rather than cut, so no request drops out of sight.
   */
  page(filter: PendingFilter, limit: number, cursor?: string): PendingPage {
    const { approver } = filter
    const hits = this.d.store.list({ status: 'pending_approval', node: filter.node, action: filter.action, requester: filter.requester }, Number.MAX_SAFE_INTEGER)
      .filter((r) => !approver || (ApprovalService.isApprover(approver, r.approval?.approver_groups ?? [])
        && r.requester.id !== approver.id && (r.requester_person ?? r.requester.id) !== approver.person))
    const from = cursor === undefined ? 0 : firstOlderThan(hits, cursor)
    const runs = hits.slice(from, from + limit)
    const more = from + runs.length < hits.length
    return { runs, total: hits.length, next_cursor: more && runs.length > 0 ? (runs.at(-1) as RunSummary).id : null }
  }

  /** How many runs wait for approval in all (the portal's badge). */
  pendingCount(): number {
    return this.d.store.pendingCount()
  }

  /** A run entered `pending_approval`: tell the approvers. Never blocks or fails the run. */
  announce(run: Run): void {
    this.d.notifier.pending(run, this.d.runUrl(run.id))
  }

  /**
   * Approves or denies `runId` for `principal`. Resolves with the run as it is
   * afterwards (dispatched, if this approval completed the quorum); throws a
   * typed error, changing nothing, when the decision is not allowed.
   */
  async decide(principal: Principal, runId: string, input: DecisionInput): Promise<Run> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators decide runs; agents never approve')
    // The agent reads a deny reason, other people read a comment: plain text only, on every surface.
    requirePlainText(input.decision === 'deny' ? { reason: input.reason } : { comment: input.comment })
    const passkey = input.decision === 'approve' ? await this.checkedPasskey(principal, runId, input) : undefined
    const now = this.now()
    const at = new Date(now).toISOString()
    let refusal: Error | undefined
    let outcome: 'approved' | 'approval_recorded' | 'denied' | 'expired' | undefined
    let decided: Run | undefined
    const updated = await this.d.store.update(runId, (r) => {
      refusal = undefined
      outcome = undefined
      const expired = this.expiredNow(r, now)
      if (expired) { outcome = 'expired'; return expired }
      refusal = this.refusal(principal, r, input)
      if (refusal) return undefined
      const a = r.approval as NonNullable<Run['approval']>
      const decision: Decision = { by: principal.id, person: principal.person, at, binding: a.binding }
      if (input.decision === 'deny') {
        outcome = 'denied'
        decided = {
          ...r, status: 'denied', finished_at: at,
          status_reason: `denied by ${principal.id}: ${input.reason}`,
          approval: { ...a, denial: { ...decision, reason: input.reason } },
        }
        return decided
      }
      const approvals = [...a.approvals, { ...decision, ...(input.comment ? { comment: input.comment } : {}), ...(passkey ? { passkey } : {}) }]
      // Under the approver registry only passkey-signed approvals count, and at least its quorum of them.
      const need = this.passkeyRequirement(r)
      const quorum = Math.max(a.quorum, need?.quorum ?? 0)
      const counted = need ? approvals.filter((x) => x.passkey).length : approvals.length
      const complete = counted >= quorum
      outcome = complete ? 'approved' : 'approval_recorded'
      const state = { ...a, approvals, quorum, ...(need ? { passkey_required: true } : {}) }
      decided = complete
        ? { ...r, status: 'approved', status_reason: `approved by ${approvals.map((x) => x.by).join(', ')}`, approval: { ...state, approved_at: at } }
        : { ...r, status_reason: `${counted} of ${quorum} ${need ? 'passkey-signed ' : ''}approvals (${approvals.map((x) => x.by).join(', ')}); waiting until ${a.expires_at}`, approval: state }
      return decided
    })
    if (!updated) throw new RunNotFound(runId)
    if (outcome === 'expired') {
      await this.recordExpiry(updated)
      throw withDetails(new ApprovalExpired(runId, updated.approval?.expires_at ?? ''), { run_id: runId, status: 'expired' })
    }
    if (refusal) throw refusal
    const run = decided as Run
    const waited = (now - Date.parse(run.created_at)) / 1000
    const actor = { id: principal.id, kind: principal.kind }
    const base = { actor, run_id: run.id, node: run.node_name, action: run.action }
    this.d.metrics.decisions.inc({ outcome: outcome as string })
    if (outcome === 'denied') {
      this.d.metrics.approvalWait.observe({ outcome: 'denied' }, waited)
      await this.d.audit.append({ ...base, type: 'approval.denied', data: { reason: (input as { reason: string }).reason, person: principal.person, binding: run.approval?.binding } })
      this.d.notifier.decided(run, this.d.runUrl(run.id))
      return run
    }
    const a = run.approval as NonNullable<Run['approval']>
    const granted: AuditEventBody = {
      ...base, type: 'approval.granted',
      data: {
        person: principal.person, binding: a.binding, approvals_so_far: a.approvals.length, quorum: a.quorum, quorum_met: outcome === 'approved',
        ...(input.decision === 'approve' && input.comment ? { comment: input.comment } : {}),
        ...(passkey ? { passkey: passkey.credential_id } : {}),
      },
    }
    if (outcome === 'approval_recorded') {
      await this.d.audit.append(granted)
      return run
    }
    this.d.metrics.approvalWait.observe({ outcome: 'approved' }, waited)
    // The approval is on the chain before the writ leaves: dispatchApproved waits for it alongside its claim.
    const dispatched = await this.d.runs.dispatchApproved(run.id, { ahead: this.d.audit.append(granted) })
    this.d.notifier.decided(dispatched ?? run, this.d.runUrl(run.id))
    return dispatched ?? run
  }

  /** Why `principal` may not make this decision on `r` now, or undefined. */
  private refusal(principal: Principal, r: Run, input: DecisionInput): Error | undefined {
    const a = r.approval
    if (r.status !== 'pending_approval' || !a) {
      const by = r.approval?.denial ? ` by ${r.approval.denial.by}` : r.approval?.approvals.length ? ` by ${r.approval.approvals.map((x) => x.by).join(', ')}` : ''
      return withDetails(new NotPending(r.id, `${r.status}${by}`), { run_id: r.id, status: r.status })
    }
    const requesterPerson = r.requester_person ?? r.requester.id
    if (principal.id === r.requester.id || principal.person === requesterPerson) {
      return withDetails(new SelfApproval(r.id, principal.id === r.requester.id ? principal.id : `${r.requester.id} (${requesterPerson})`), { run_id: r.id })
    }
    if (!ApprovalService.isApprover(principal, a.approver_groups)) {
      return withDetails(new NotAnApprover(r.id, a.approver_groups.join(', '), principal.id), { run_id: r.id, approver_groups: a.approver_groups })
    }
    if (input.binding !== undefined && input.binding !== a.binding) {
      return withDetails(new BindingMismatch(input.binding.slice(0, 16), r.id, a.binding.slice(0, 16)), { run_id: r.id, binding: a.binding })
    }
    // Runners verify binding v2 only: an approval of a run bound before the upgrade could never run. Denying it still works.
    if (input.decision === 'approve' && r.binding_salt === undefined) return withDetails(new BindingOutdated(r.id), { run_id: r.id })
    if (input.decision === 'approve' && a.approvals.some((x) => x.by === principal.id || x.person === principal.person)) {
      return withDetails(new AlreadyApproved(principal.id, r.id, a.quorum - a.approvals.length), { run_id: r.id })
    }
    return undefined
  }

  /** The expired record for a pending run past its window, else undefined. */
  private expiredNow(r: Run, now: number): Run | undefined {
    if (r.status !== 'pending_approval' || !r.approval || Date.parse(r.approval.expires_at) > now) return undefined
    const at = new Date(now).toISOString()
    const got = r.approval.approvals.length
    return { ...r, status: 'expired', finished_at: at, status_reason: `no decision by ${r.approval.expires_at} (${got} of ${r.approval.quorum} approvals); the run was not dispatched` }
  }

  private async recordExpiry(run: Run): Promise<void> {
    this.d.metrics.decisions.inc({ outcome: 'expired' })
    this.d.metrics.approvalWait.observe({ outcome: 'expired' }, (Date.parse(run.finished_at ?? run.updated_at) - Date.parse(run.created_at)) / 1000)
    await this.d.audit.append({ type: 'run.expired', actor: CONTROL_PLANE_ACTOR, run_id: run.id, node: run.node_name, action: run.action, data: { expires_at: run.approval?.expires_at, approvals: run.approval?.approvals.length ?? 0, quorum: run.approval?.quorum } })
    this.d.notifier.decided(run, this.d.runUrl(run.id))
  }

  /**
   * Expires pending runs past their window, and dispatches approved runs that
   * nobody dispatched (the deciding instance stopped in between). Only the
   * instance whose revision-checked update wins records the outcome.
   */
  async sweep(approvedGraceMs: number): Promise<void> {
    const now = this.now()
    // The store keeps waiting runs by when their window closes: a sweep touches only those due.
    for (const r of this.d.store.expiredBy(now)) {
      if (!r.approval || Date.parse(r.approval.expires_at) > now) continue
      let expired: Run | undefined
      await this.d.store.update(r.id, (run) => (expired = this.expiredNow(run, now)))
      if (expired) {
        this.d.log.info({ runId: r.id }, 'approval window closed; run expired')
        await this.recordExpiry(expired)
      }
    }
    for (const r of this.d.store.approvedBefore(now - approvedGraceMs)) {
      const since = Date.parse(r.approval?.approved_at ?? r.updated_at)
      if (now - since < approvedGraceMs) continue
      // Its approval event may not have reached the chain: restate it before the writ leaves.
      // (A run the brakes hold is not claimed, and not logged on every sweep.)
      const after = await this.d.runs.dispatchApproved(r.id, {
        afterClaim: (run) => (this.d.log.warn({ runId: r.id }, 'approved run was not dispatched by the instance that approved it; dispatching'), this.d.audit.append({
          type: 'run.approved', actor: CONTROL_PLANE_ACTOR, run_id: run.id, node: run.node_name, action: run.action,
          data: { recovered: true, binding: run.approval?.binding, approvals: run.approval?.approvals.map((a) => ({ by: a.by, person: a.person, at: a.at })) },
        })),
      })
      if (after && !isTerminal(after.status) && after.status !== 'approved') this.d.notifier.decided(after, this.d.runUrl(r.id))
    }
  }
}
