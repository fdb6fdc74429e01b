/**
 * The approval binding: one digest over exactly what a person approves — the
 * run id, action, pack digest, node, canonical arguments, reason, requester
 * and the run's options (a timeout or output cap is part of what runs). The
 * control plane shows it with the run and records it with each approval; the
 * runner recomputes it from the writ it received, so an approval given for
 * one run can never be carried by another, or by the same run with anything
 * changed. It is also the passkey challenge an approver signs.
 *
 * The digest is shown everywhere (pages, CLI, audit events) while sensitive
 * arguments are not: unsalted, a short secret (a 4-digit pin) falls to trying
 * every value against it. So the run's random 256-bit salt is bound too; only
 * the run record and the writ hold it, and without it no guess can be checked.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../canonical-json.js'
import type { Writ } from './messages.js'

/** What the binding covers; a writ has every field. */
export type ApprovalSubject = Pick<Writ, 'run_id' | 'action' | 'pack_digest' | 'node_id' | 'args' | 'reason' | 'requester' | 'options' | 'binding_salt'> & Partial<Pick<Writ, 'state'>>

/**
 * Domain tag, so this digest can never collide with another canonical-JSON
 * hash we compute; v2 (salt and options) differs from v1 here as well as in
 * its fields, so no v1 digest can ever equal a v2 one.
 */
const DOMAIN = 'writ.v2.approval-binding'

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
    // Whole: any option the schema gains is bound without a change here.
    options: s.options,
    salt: s.binding_salt,
    // Only when bound: a binding without state stays what it always was.
    ...(s.state !== undefined ? { state: s.state } : {}),
  }
  return createHash('sha256').update(canonicalJson(bound)).digest('hex')
}
