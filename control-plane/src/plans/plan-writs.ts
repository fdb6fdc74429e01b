/**
 * The plan root and its writs: one leaf per frozen target, the Merkle tree
 * over them (built once per plan on the instance that rolls it out), one
 * statement signed with the dispatch key per writ window — not per target —
 * and each target's writ with its inclusion proof.
 */
import { createHash } from 'node:crypto'
import {
  MerkleTree, WRIT_VERSION, canonicalJson, encodeProof, planLeafHash, planRunId, signPlanStatement,
  type ApprovalRef, type PlanStatement, type SigningKey, type Writ,
} from '@writ/packs/protocol'
import { randomHex } from '../runs/index.js'
import type { Plan } from './plan-schemas.js'

type Frozen = Pick<Plan, 'id' | 'action' | 'pack_digest' | 'options' | 'salt' | 'targets'>

export function planTree(plan: Frozen): MerkleTree {
  return new MerkleTree(plan.targets.map((t, position) => planLeafHash({
    plan_id: plan.id, position, node_id: t.node_id, action: plan.action, pack_digest: plan.pack_digest, args: t.args, options: plan.options, salt: plan.salt,
  })))
}

/** SHA-256 over the frozen list (node id, name and arguments per position): the audit trail names it before anything leaves. */
export function listDigest(targets: Plan['targets']): string {
  return createHash('sha256').update(canonicalJson(targets.map((t) => [t.node_id, t.node_name, t.args]))).digest('hex')
}

export interface SignedStatement { statement: PlanStatement, sig: string, key_id: string }

/** Signs the statement every writ of the plan carries, valid for `ttlMs` from now. */
export function signStatement(plan: Plan, key: SigningKey, ttlMs: number, now = Date.now()): SignedStatement {
  return signPlanStatement({
    v: 1, kind: 'writ.plan-root', plan_id: plan.id, root: plan.root, count: plan.targets.length, reason: plan.reason,
    requester: plan.requester, request_hash: plan.request_hash, ...(plan.session_id !== undefined ? { session_id: plan.session_id } : {}),
    issued_at: new Date(now).toISOString(), expires_at: new Date(now + ttlMs).toISOString(),
  }, key)
}

/** The statement and its signature as JSON, once per batch: every writ of the batch carries the same bytes. */
const statementJson = new WeakMap<SignedStatement, string>()

/** The envelope of target `position`, as JSON: the writ, the statement and the leaf's proof. */
export function planWritJson(plan: Plan, tree: MerkleTree, signed: SignedStatement, position: number, approvals: ApprovalRef[]): string {
  const t = plan.targets[position]
  if (!t) throw new RangeError(`plan ${plan.id} has no target ${position}`)
  const s = signed.statement
  const writ: Writ = {
    v: WRIT_VERSION, run_id: planRunId(plan.id, position), node_id: t.node_id, node_name: t.node_name, action: plan.action, pack: plan.pack,
    pack_digest: plan.pack_digest, args: t.args, reason: plan.reason, requester: plan.requester, approvals, request_hash: plan.request_hash,
    ...(plan.session_id !== undefined ? { session_id: plan.session_id } : {}), options: plan.options, binding_salt: plan.salt,
    issued_at: s.issued_at, expires_at: s.expires_at, nonce: randomHex(16),
    // A gated target the plan's grant covered carries the grant, which its runner checks like an approval.
    ...(plan.grant && t.policy.decision === 'require_approval' ? { grant: plan.grant.signed } : {}),
  }
  let shared = statementJson.get(signed)
  if (shared === undefined) statementJson.set(signed, shared = `"statement":${JSON.stringify(s)},"sig":${JSON.stringify(signed.sig)}`)
  return `{"writ":${JSON.stringify(writ)},"key_id":${JSON.stringify(signed.key_id)},"plan":{${shared},"position":${position},"proof":"${encodeProof(tree.proof(position))}"}}`
}
