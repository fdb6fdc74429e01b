/**
 * The approval binding: one digest over exactly what a person approves — the
 * run id, action, pack digest, node, canonical arguments, reason and
 * requester. The control plane shows it with the run and records it with each
 * approval; the runner recomputes it from the writ it received, so an
 * approval given for one run can never be carried by another, or by the same
 * run with anything changed.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../canonical-json.js'
import type { Writ } from './messages.js'

/** What the binding covers; a writ has every field. */
export type ApprovalSubject = Pick<Writ, 'run_id' | 'action' | 'pack_digest' | 'node_id' | 'args' | 'reason' | 'requester'>

/** Domain tag, so this digest can never collide with another canonical-JSON hash we compute. */
const DOMAIN = 'writ.v1.approval-binding'

/** SHA-256 (hex) over the canonical JSON of the subject's bound fields. */
export function approvalBinding(s: ApprovalSubject): string {
  const bound = {
    domain: DOMAIN,
    run_id: s.run_id,
    action: s.action,
    pack_digest: s.pack_digest,
    node_id: s.node_id,
    args: s.args,
    reason: s.reason,
    requester: { id: s.requester.id, kind: s.requester.kind },
  }
  return createHash('sha256').update(canonicalJson(bound)).digest('hex')
}
