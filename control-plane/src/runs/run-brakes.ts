/**
 * What the run path asks of the brakes (brakes/: the freeze and the budgets)
 * before a writ leaves. The run path owns this seam; the brakes implement it.
 */
import type { Run } from './run-record.js'

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
