/**
 * What the runner keeps between verifying a writ and journaling it: the run
 * ids whose passkeys are still being checked (a redelivery meanwhile is a
 * replay) and the grant uses those writs hold (two writs at once never share
 * one use), and the `accepted` journal entry an admitted writ is recorded
 * with — who approved, with which passkey (never the whole assertion), the
 * grant it spends, the plan it belongs to and the Nomad state it was
 * approved on.
 */
import type { AcceptedWrit } from './run-execution.js'

export class ChecksInFlight {
  private readonly runIds = new Set<string>()
  private readonly grantUses = new Map<string, number>()

  /** Whether this run id is being checked. */
  has(runId: string): boolean { return this.runIds.has(runId) }

  /** Uses of this grant held by writs being checked: they count until refused or journaled. */
  heldUses(grantId: string): number { return this.grantUses.get(grantId) ?? 0 }

  /** Holds the writ's run id and grant use while its passkeys are checked; the function returned lets go of both. */
  hold(v: AcceptedWrit): () => void {
    const runId = v.writ.run_id
    const grantId = v.writ.grant?.statement.id
    this.runIds.add(runId)
    if (grantId !== undefined) this.grantUses.set(grantId, this.heldUses(grantId) + 1)
    let held = true
    return () => {
      if (!held) return
      held = false
      this.runIds.delete(runId)
      if (grantId === undefined) return
      const n = this.heldUses(grantId) - 1
      if (n > 0) this.grantUses.set(grantId, n)
      else this.grantUses.delete(grantId)
    }
  }
}

/** The data of the `accepted` journal entry for an admitted writ; `checked` adds what the passkey check verified. */
export function acceptedEntry(v: AcceptedWrit, checked: Record<string, unknown> = {}): Record<string, unknown> {
  const { writ } = v
  // The journal keeps who approved and with which passkey, not the whole assertion.
  const approvals = writ.approvals.map(({ passkey, ...a }) => (passkey ? { ...a, passkey: passkey.credential_id } : a))
  return {
    action: writ.action, requester: writ.requester.id, digest: writ.pack_digest, request_hash: writ.request_hash, expires_at: writ.expires_at,
    ...(v.plan ? { plan: v.plan.id, position: v.plan.position } : {}),
    ...(approvals.length > 0 ? { approvals } : {}), ...checked,
    // Counted by the journal: the next writ under this grant sees this use at once, and after a restart.
    ...(writ.grant ? { grant: writ.grant.statement.id, grant_expires_at: writ.grant.statement.expires_at } : {}),
    // The Nomad state the approval was given on, checked again right before the action (run-preflight.ts).
    ...(writ.state ? { state: { kind: writ.state.kind, id: writ.state.id, modify_index: writ.state.modify_index } } : {}),
  }
}
