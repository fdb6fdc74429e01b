/**
 * What the run path asks of the brakes (brakes/: the freeze and the budgets)
 * before a writ leaves. The run path owns this seam; the brakes implement it.
 */
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Run } from './run-record.js'
import type { RunStore } from './run-store.js'

/** What a charge spent, handed back if the dispatch does not happen after all. Opaque to the run path. */
export type BrakeReceipt = { readonly brakeReceipt: true }

export interface RunBrakes {
  /** Throws the typed refusal (423 WRIT_ERR_FROZEN) when a freeze covers this requester and the action changes state. */
  refuseIfFrozen(requester: Run['requester'], action: string): void
  /** Spends the requester's budget on a run about to be dispatched, or throws 429 WRIT_ERR_BUDGET_EXHAUSTED (nothing spent). */
  charge(run: Run): Promise<BrakeReceipt | undefined>
  /** An approved run about to be dispatched: why it waits instead (a freeze, a spent budget), or what its dispatch spent. */
  admitApproved(run: Run): Promise<{ held: string } | { receipt: BrakeReceipt | undefined }>
  /** Gives back a charge whose dispatch did not happen. */
  refund(receipt: BrakeReceipt): Promise<void>
}

/** What the brakes say of an approved run about to leave: held (and why), or what its dispatch spent; undefined when it is no longer approved. */
export async function admitApproved(brakes: RunBrakes, store: RunStore, id: string): Promise<{ held: string } | { receipt: BrakeReceipt | undefined } | undefined> {
  const hit = await store.current(id)
  if (hit?.run.status !== 'approved') return undefined
  return brakes.admitApproved(hit.run)
}

/** An approved run stays approved, saying why it waits; the first time it is held for a reason, that is audited. */
export async function holdApproved(store: RunStore, audit: AuditChain, id: string, why: string): Promise<Run | undefined> {
  let changed = false
  const run = await store.update(id, (r) => {
    changed = r.status === 'approved' && r.status_reason !== why
    return changed ? { ...r, status_reason: why } : undefined
  })
  if (changed && run) {
    await audit.append({ type: 'run.held', actor: CONTROL_PLANE_ACTOR, run_id: id, node: run.node_name, action: run.action, data: { reason: why } })
  }
  return run
}
