/**
 * A plan: one request over a frozen set of targets, approved once. The
 * control plane hashes each target into a leaf (plan id, node, action, pack
 * digest, canonical per-target arguments, options, rollout position and the
 * plan's secret salt), builds a Merkle tree over them, and signs one
 * statement naming the root with the dispatch key. An approval binds the
 * root (`planBinding`), so a person approves exactly this set of targets.
 *
 * Each target's writ carries the statement, its signature and the leaf's
 * inclusion proof; the runner recomputes the leaf from the writ's own fields
 * and checks it is in the signed root (`checkPlanWrit`). So a control plane
 * cannot add a node, change one node's arguments or reuse another plan's
 * leaf after the fact without the runner noticing — and with passkey-signed
 * approvals over the root, not even with the dispatch key in hand.
 */
import { createHash, sign } from 'node:crypto'
import { canonicalJson } from '../canonical-json.js'
import { merkleLeafHash, maxProofLength, verifyInclusion } from './merkle-tree.js'
import { PLAN_ID_RE, type PlanProof, type PlanStatement, type Writ } from './messages.js'
import { verifySignature, type SigningKey, type TrustedKey } from './writ-signing.js'

const PLAN_RUN_ID_RE = new RegExp(`^(${PLAN_ID_RE.source.slice(1, -1)})-(0|[1-9][0-9]{0,5})$`)

/** The run id of the target at `position` of plan `planId`: every target is also an ordinary run. */
export function planRunId(planId: string, position: number): string {
  return `${planId}-${position}`
}

/** The plan and position a target's run id names, or undefined for a run that is not a plan's. */
export function parsePlanRunId(runId: string): { planId: string, position: number } | undefined {
  const m = PLAN_RUN_ID_RE.exec(runId)
  return m ? { planId: m[1] as string, position: Number(m[2]) } : undefined
}


/** What one leaf covers; a target's writ has every field (the salt is the writ's `binding_salt`). */
export interface PlanLeaf {
  plan_id: string
  position: number
  node_id: string
  action: string
  pack_digest: string
  args: Writ['args']
  options: Writ['options']
  /** The plan's secret salt: without it no leaf (and so no root) can be tested against guesses of a sensitive argument. */
  salt: string
}

const LEAF_DOMAIN = 'writ.v2.plan-leaf'
const BINDING_DOMAIN = 'writ.v2.plan-binding'

/** The leaf's canonical bytes, hashed as a Merkle leaf. */
export function planLeafHash(l: PlanLeaf): Buffer {
  return merkleLeafHash(canonicalJson({
    domain: LEAF_DOMAIN, plan_id: l.plan_id, position: l.position, node_id: l.node_id, action: l.action,
    pack_digest: l.pack_digest, args: l.args, options: l.options, salt: l.salt,
  }))
}

/**
 * The approval binding of a plan: SHA-256 over its id, root, size, reason and
 * requester. It is what approvers approve and their passkeys sign, and what
 * every target's runner recomputes from the signed statement.
 */
export function planBinding(s: Pick<PlanStatement, 'plan_id' | 'root' | 'count' | 'reason' | 'requester'>): string {
  return createHash('sha256').update(canonicalJson({
    domain: BINDING_DOMAIN, plan_id: s.plan_id, root: s.root, count: s.count, reason: s.reason,
    requester: { id: s.requester.id, kind: s.requester.kind },
  })).digest('hex')
}

export function signPlanStatement(statement: PlanStatement, key: SigningKey): { statement: PlanStatement, sig: string, key_id: string } {
  return { statement, sig: sign(null, Buffer.from(canonicalJson(statement)), key.privateKey).toString('base64'), key_id: key.keyId }
}

/** The proof hashes as one hex string (what a writ carries). */
export function encodeProof(proof: readonly Buffer[]): string {
  return proof.map((p) => p.toString('hex')).join('')
}

function decodeProof(hex: string): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < hex.length; i += 64) out.push(Buffer.from(hex.slice(i, i + 64), 'hex'))
  return out
}

export type PlanCheck =
  | { ok: true, binding: string }
  | { ok: false, code: 'bad_plan' | 'not_in_plan' | 'unknown_key' | 'bad_signature', message: string }

/**
 * Everything a runner checks of a plan writ before the checks every writ
 * passes: the statement's signature (`sentStatement` exactly as received),
 * that the writ is the statement's (run id from plan and position, reason,
 * requester, request hash, session, validity window), that its leaf —
 * recomputed from the writ's own node, action, digest, arguments, options and
 * salt — is in the signed root, and that every approval it carries binds
 * that root. Returns the plan binding (what passkeys must have signed).
 */
export function checkPlanWrit(writ: Writ, plan: PlanProof, keyId: string, sentStatement: unknown, trusted: readonly TrustedKey[]): PlanCheck {
  const sig = verifySignature(sentStatement, keyId, plan.sig, trusted)
  if (!sig.ok) return { ok: false, code: sig.code, message: `plan statement: ${sig.message}` }
  const s = plan.statement
  const bad = (message: string): PlanCheck => ({ ok: false, code: 'bad_plan', message })
  if (plan.position >= s.count) return bad(`position ${plan.position} is outside plan ${s.plan_id} of ${s.count} target(s)`)
  if (writ.run_id !== planRunId(s.plan_id, plan.position)) return bad(`run ${writ.run_id} is not position ${plan.position} of plan ${s.plan_id} (that is ${planRunId(s.plan_id, plan.position)})`)
  const mismatch = (['reason', 'request_hash', 'session_id', 'issued_at', 'expires_at'] as const).find((k) => writ[k] !== s[k])
  if (mismatch) return bad(`the writ's ${mismatch} differs from the signed plan statement's`)
  if (writ.requester.id !== s.requester.id || writ.requester.kind !== s.requester.kind) return bad(`the writ's requester differs from the signed plan statement's`)
  const proof = decodeProof(plan.proof)
  if (proof.length > maxProofLength(s.count)) return bad(`the inclusion proof holds ${proof.length} hashes; a plan of ${s.count} needs at most ${maxProofLength(s.count)}`)
  const leaf = planLeafHash({
    plan_id: s.plan_id, position: plan.position, node_id: writ.node_id, action: writ.action, pack_digest: writ.pack_digest,
    args: writ.args, options: writ.options, salt: writ.binding_salt,
  })
  if (!verifyInclusion(leaf, plan.position, s.count, proof, Buffer.from(s.root, 'hex'))) {
    return {
      ok: false, code: 'not_in_plan',
      message: `this writ (node ${writ.node_id}, ${writ.action}, its arguments and options) is not target ${plan.position} of the plan the control plane signed (root ${s.root.slice(0, 12)}…): its leaf is not under that root`,
    }
  }
  const binding = planBinding(s)
  for (const a of writ.approvals) {
    if (a.binding !== binding) return bad(`the approval by ${a.by} is bound to ${a.binding.slice(0, 12)}…, not to this plan's root (${binding.slice(0, 12)}…)`)
  }
  return { ok: true, binding }
}
