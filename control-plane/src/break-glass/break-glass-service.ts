/**
 * Break-glass: an approver runs a gated action alone when the quorum cannot
 * be reached. Only where the policy rule says `break_glass: true`, only by an
 * operator in the rule's approver groups (never the requester), and with
 * their passkey where the approver registry asks for one. The run dispatches
 * at once with a single approval flagged `break_glass` (the runner accepts it
 * as the whole quorum, under the dispatch key's signature), is audited and
 * broadcast, and leaves a review item other approvers must acknowledge;
 * until one does, the same person cannot break the glass again.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { PasskeyAssertion } from '@writ/packs/protocol'
import type { AuditChain } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import {
  ApprovalExpired, BindingMismatch, BindingOutdated, BreakGlassNotAllowed, BreakGlassUnreviewed, Forbidden, NotAnApprover, NotPending, PasskeyRejected, PasskeyRequired,
  ReviewAlreadyAcknowledged, ReviewForbidden, ReviewNotFound, RunNotFound, SelfApproval, requirePlainText, withDetails,
} from '../http/index.js'
import type { ApprovalNotifier } from '../notify/index.js'
import type { Passkeys } from '../passkeys/index.js'
import { ApprovalService } from '../approvals/index.js'
import type { Decision, Run, RunService, RunStore } from '../runs/index.js'
import type { ReviewItem, ReviewStore } from './review-store.js'

export interface BreakGlassInput { reason: string, binding?: string | undefined, passkey?: PasskeyAssertion | undefined }

export interface BreakGlassDeps {
  store: RunStore
  runs: RunService
  approvals: ApprovalService
  reviews: ReviewStore
  audit: AuditChain
  notifier: ApprovalNotifier
  passkeys?: Passkeys | undefined
  runUrl: (runId: string) => string
  log: Logger
  now?: () => number
}

/** A review id: `v`, 9 base-36 digits of the time, 8 hex (sorts by time, like run ids). */
function newReviewId(now: number): string {
  return `v${now.toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`
}

export class BreakGlass {
  constructor(private readonly d: BreakGlassDeps) {}

  private now(): number { return (this.d.now ?? Date.now)() }

  /** Runs `runId` alone for `principal`; resolves with the run as dispatched and its review item, or throws a typed error, changing nothing. */
  async run(principal: Principal, runId: string, input: BreakGlassInput): Promise<{ run: Run, review: ReviewItem }> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators break the glass; agents never approve')
    requirePlainText({ reason: input.reason })
    const hit = await this.d.store.get(runId)
    if (!hit) throw new RunNotFound(runId)
    const refusal = this.refusal(principal, hit.run, input)
    if (refusal) throw refusal
    await this.checkPasskey(principal, hit.run, input.passkey)

    const now = this.now()
    const at = new Date(now).toISOString()
    const reviewId = newReviewId(now)
    const slot = await this.d.reviews.claimSlot(principal.person, reviewId)
    if (!slot.ok) {
      const open = (await this.d.reviews.get(slot.openReview))?.item
      throw withDetails(new BreakGlassUnreviewed(principal.id, open?.run_id ?? '?', slot.openReview), { review_id: slot.openReview, run_id: open?.run_id })
    }
    // The review item is stored before the run moves, so a held slot always names an item someone can acknowledge.
    const review: ReviewItem = {
      id: reviewId, run_id: hit.run.id, action: hit.run.action, node: hit.run.node_name, by: principal.id, person: principal.person,
      reason: input.reason, at, approver_groups: hit.run.approval?.approver_groups ?? [], rule: hit.run.policy.rule,
    }
    let approved: Run | undefined
    try {
      await this.d.reviews.put(review)
      approved = await this.approve(principal, runId, input, at, reviewId)
    } finally {
      if (!approved) {
        await this.d.reviews.remove(reviewId)
        await this.d.reviews.releaseSlot(principal.person, reviewId)
      }
    }
    const a = approved.approval as NonNullable<Run['approval']>
    const event = this.d.audit.append({
      type: 'run.break_glass', actor: { id: principal.id, kind: principal.kind }, run_id: approved.id, node: approved.node_name, action: approved.action,
      data: {
        person: principal.person, reason: input.reason, binding: a.binding, review_id: reviewId, rule: approved.policy.rule,
        approvals_before: hit.run.approval?.approvals.length ?? 0, quorum: a.quorum, ...(input.passkey ? { passkey: input.passkey.credential_id } : {}),
      },
    })
    const dispatched = (await this.d.runs.dispatchApproved(approved.id, { ahead: event })) ?? approved
    this.d.notifier.decided(dispatched, this.d.runUrl(approved.id))
    this.d.log.warn({ runId: approved.id, by: principal.id, reviewId }, 'break-glass: run dispatched by one approver alone')
    return { run: dispatched, review }
  }

  /** The revision-checked move to `approved` with the one break-glass approval. */
  private async approve(principal: Principal, runId: string, input: BreakGlassInput, at: string, reviewId: string): Promise<Run> {
    let refusal: Error | undefined
    let expired = false
    const updated = await this.d.store.update(runId, (r) => {
      refusal = this.refusal(principal, r, input)
      expired = false
      if (refusal) {
        expired = r.status === 'pending_approval' && r.approval !== undefined && Date.parse(r.approval.expires_at) <= Date.parse(at)
        return undefined
      }
      const a = r.approval as NonNullable<Run['approval']>
      const decision: Decision = {
        by: principal.id, person: principal.person, at, binding: a.binding, comment: input.reason, break_glass: true,
        ...(input.passkey ? { passkey: input.passkey } : {}),
      }
      return {
        ...r, status: 'approved', status_reason: `break-glass by ${principal.id}: ${input.reason}`,
        approval: { ...a, approvals: [decision], approved_at: at, break_glass: { by: principal.id, person: principal.person, at, reason: input.reason, review_id: reviewId } },
      }
    })
    if (!updated) throw new RunNotFound(runId)
    if (refusal) throw expired ? withDetails(new ApprovalExpired(runId, updated.approval?.expires_at ?? ''), { run_id: runId }) : refusal
    return updated
  }

  /** Why `principal` may not break the glass on `r` now, or undefined. */
  private refusal(principal: Principal, r: Run, input: BreakGlassInput): Error | undefined {
    const a = r.approval
    if (r.status !== 'pending_approval' || !a) return withDetails(new NotPending(r.id, r.status), { run_id: r.id, status: r.status })
    if (Date.parse(a.expires_at) <= this.now()) return withDetails(new ApprovalExpired(r.id, a.expires_at), { run_id: r.id })
    if (r.policy.break_glass !== true) {
      const why = r.policy.rule ? `policy rule "${r.policy.rule}" does not permit break-glass (break_glass: true)` : 'no policy rule permits break-glass for it'
      return withDetails(new BreakGlassNotAllowed(r.id, `${r.action} on ${r.node_name}`, why), { run_id: r.id, rule: r.policy.rule })
    }
    if (principal.id === r.requester.id || principal.person === (r.requester_person ?? r.requester.id)) {
      return withDetails(new SelfApproval(r.id, r.requester.id), { run_id: r.id })
    }
    if (!ApprovalService.isApprover(principal, a.approver_groups)) {
      return withDetails(new NotAnApprover(r.id, a.approver_groups.join(', '), principal.id), { run_id: r.id, approver_groups: a.approver_groups })
    }
    if (input.binding !== undefined && input.binding !== a.binding) {
      return withDetails(new BindingMismatch(input.binding.slice(0, 16), r.id, a.binding.slice(0, 16)), { run_id: r.id, binding: a.binding })
    }
    if (r.binding_salt === undefined) return withDetails(new BindingOutdated(r.id), { run_id: r.id })
    return undefined
  }

  /** The passkey rule still applies: where the registry asks for one, break-glass needs the operator's own passkey over the binding. */
  private async checkPasskey(principal: Principal, r: Run, passkey: PasskeyAssertion | undefined): Promise<void> {
    const need = this.d.approvals.passkeyRequirement(r)
    const binding = (r.approval as NonNullable<Run['approval']>).binding
    // Runners hold the registry's quorum unless the registry itself lets one passkey stand for it: refuse here, before anything leaves.
    if (need && need.quorum > 1 && need.break_glass !== true) {
      throw withDetails(new BreakGlassNotAllowed(r.id, `${r.action} on ${r.node_name}`, `the approver registry (${need.rule}) asks ${need.quorum} passkey approvals and does not allow break-glass for it; its administrator sets break_glass: true on that registry rule to allow one`), { run_id: r.id, registry_rule: need.rule })
    }
    if (!passkey) {
      if (need) throw withDetails(new PasskeyRequired(r.id, need.why, this.d.runUrl(r.id)), { run_id: r.id, binding, break_glass: true })
      return
    }
    if (!this.d.passkeys) throw new PasskeyRejected('passkeys are not configured on this control plane; break the glass without one')
    await this.d.passkeys.verifyApproval(principal, { id: r.id, action: r.action, risk: r.risk, requester: r.requester, binding }, passkey)
  }

  /** Review items, newest first; `open` only the unacknowledged. */
  async list(open: boolean): Promise<ReviewItem[]> {
    const all = await this.d.reviews.list()
    return open ? all.filter((r) => r.acknowledged_at === undefined) : all
  }

  /** `principal` acknowledges review `id`: another approver of the action, never its author. Frees the author's next break-glass. */
  async acknowledge(principal: Principal, id: string, comment?: string): Promise<ReviewItem> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators acknowledge break-glass reviews')
    requirePlainText({ comment })
    for (let attempt = 0; attempt < 5; attempt++) {
      const hit = await this.d.reviews.get(id)
      if (!hit) throw new ReviewNotFound(id)
      const r = hit.item
      if (r.acknowledged_at !== undefined) throw withDetails(new ReviewAlreadyAcknowledged(id, r.acknowledged_by ?? '?', r.acknowledged_at), { review_id: id })
      if (principal.id === r.by || principal.person === r.person) {
        throw withDetails(new ReviewForbidden(`${principal.id} broke the glass on run "${r.run_id}" and cannot acknowledge their own review; another approver from ${r.approver_groups.join(', ')} must`), { review_id: id })
      }
      if (!ApprovalService.isApprover(principal, r.approver_groups)) {
        throw withDetails(new ReviewForbidden(`review "${id}" is acknowledged by an approver from ${r.approver_groups.join(', ')}; ${principal.id} is in none of them`), { review_id: id })
      }
      const acked: ReviewItem = { ...r, acknowledged_by: principal.id, acknowledged_at: new Date(this.now()).toISOString(), ...(comment ? { comment } : {}) }
      if (!(await this.d.reviews.update(acked, hit.revision))) continue
      await this.d.reviews.releaseSlot(r.person, r.id)
      await this.d.audit.append({
        type: 'break_glass.acknowledged', actor: { id: principal.id, kind: principal.kind }, run_id: r.run_id, node: r.node, action: r.action,
        data: { review_id: id, by: r.by, person: principal.person, ...(comment ? { comment } : {}) },
      })
      return acked
    }
    throw new ReviewAlreadyAcknowledged(id, 'someone else', 'this moment')
  }
}
