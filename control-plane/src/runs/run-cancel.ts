/**
 * Canceling a run: who may (its requester; for someone else's gated run one
 * of its approvers or `runs.cancel_any_groups`), and what it does — before
 * dispatch the run ends here; after, its runner is asked to stop it.
 */
import type { AuditChain } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import { CancelForbidden, NotCancelable, withDetails } from '../http/index.js'
import type { Dispatcher } from './dispatcher.js'
import { isTerminal, type Run } from './run-record.js'
import type { RunStore } from './run-store.js'

export interface CancelDeps {
  store: RunStore, audit: AuditChain, dispatcher: Dispatcher, cancelAnyGroups: readonly string[]
  /** Approvers were told the run waits; now they are told it does not. */
  onCanceledWhilePending?: ((run: Run) => void) | undefined
}

/**
 * Why `principal` may not cancel `run`, or undefined. Canceling someone
 * else's run that needed approval is a decision on it: it takes one of its
 * approvers (or a group in `runs.cancel_any_groups`). A requester may always
 * withdraw its own run; a run policy let through at once has no approvers to
 * ask, and any operator may stop it.
 */
export function cancelRefusal(principal: Principal, run: Run, cancelAnyGroups: readonly string[]): Error | undefined {
  const groups = run.approval?.approver_groups
  const own = principal.id === run.requester.id || principal.person === (run.requester_person ?? run.requester.id)
  if (own || !groups) return undefined
  if (principal.kind === 'operator' && principal.groups.some((g) => groups.includes(g) || cancelAnyGroups.includes(g))) return undefined
  return withDetails(new CancelForbidden(run.id, run.requester.id, groups.join(', '), principal.id), { run_id: run.id, approver_groups: groups })
}

/**
 * Cancels `run` (as `principal` read it): one waiting for approval or
 * approved ends here, audited; a dispatched one has its runner asked. `again`
 * reads the run afresh and tries once more when it moved meanwhile.
 */
export async function cancelRun(d: CancelDeps, principal: Principal, run: Run, again: () => Promise<Run>): Promise<Run> {
  const id = run.id
  const refusal = cancelRefusal(principal, run, d.cancelAnyGroups)
  if (refusal) throw refusal
  if (isTerminal(run.status)) throw new NotCancelable(id, run.status)
  const actor = { id: principal.id, kind: principal.kind }
  if (run.status === 'pending_approval' || run.status === 'approved') {
    let mine = false
    let waited = false
    const updated = await d.store.update(id, (r) => {
      if (r.status !== 'pending_approval' && r.status !== 'approved') return undefined
      mine = true
      waited = r.status === 'pending_approval'
      return { ...r, status: 'canceled', status_reason: `canceled by ${principal.id} before dispatch`, cancel_requested_by: principal.id, finished_at: new Date().toISOString() }
    })
    if (mine) {
      await d.audit.append({ type: 'run.canceled', actor, run_id: id, node: run.node_name, action: run.action, data: { before_dispatch: true } })
      // An approved run's follow-up comes from whoever approved it, once its dispatch finds it canceled.
      if (waited) d.onCanceledWhilePending?.(updated as Run)
      return updated as Run
    }
    return again()
  }
  const answer = await d.dispatcher.cancel(run, principal.id)
  await d.audit.append({ type: 'run.cancel_requested', actor, run_id: id, node: run.node_name, action: run.action, data: answer })
  // Recorded even when the run ended meanwhile: the request was made, and the runner's answer is audited.
  return (await d.store.update(id, (r) => r.cancel_requested_by ? undefined : { ...r, cancel_requested_by: principal.id })) ?? run
}
