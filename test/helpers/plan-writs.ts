/**
 * Plan writs built the way a control plane builds them — leaves, Merkle
 * root, one statement signed with the dispatch key, an inclusion proof per
 * target — so runner tests can send good ones, and the ones a compromised
 * control plane would send (every one still signed with the real key).
 */
import { randomBytes } from 'node:crypto'
import {
  MerkleTree, WRIT_VERSION, encodeProof, newBindingSalt, newNonce, planBinding, planLeafHash, planRunId, signPlanStatement,
  type PlanStatement, type SigningKey, type Writ,
} from '@writ/packs/protocol'

export interface PlanTarget { node_id: string, action: string, pack: string, pack_digest: string, args: Writ['args'], options?: Writ['options'] }

export interface TestPlan {
  id: string
  salt: string
  statement: PlanStatement
  sig: string
  binding: string
  tree: MerkleTree
  targets: PlanTarget[]
  /** The writ envelope of target `position`, as the control plane would send it; `over` changes the writ after the proof was made. */
  envelope(position: number, over?: Partial<Writ>, approvals?: Writ['approvals']): Record<string, unknown>
}

export function newPlanId(): string {
  return `p${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`
}

export function buildTestPlan(key: SigningKey, targets: PlanTarget[], opts: { id?: string, salt?: string, reason?: string, ttlMs?: number } = {}): TestPlan {
  const id = opts.id ?? newPlanId()
  const salt = opts.salt ?? newBindingSalt()
  const leaves = targets.map((t, position) => planLeafHash({
    plan_id: id, position, node_id: t.node_id, action: t.action, pack_digest: t.pack_digest, args: t.args, options: t.options ?? {}, salt,
  }))
  const tree = new MerkleTree(leaves)
  const now = Date.now()
  const statement: PlanStatement = {
    v: 1, kind: 'writ.plan-root', plan_id: id, root: tree.root.toString('hex'), count: targets.length, reason: opts.reason ?? 'plan test',
    requester: { id: 'agent-test', kind: 'agent' }, request_hash: 'e'.repeat(64),
    issued_at: new Date(now).toISOString(), expires_at: new Date(now + (opts.ttlMs ?? 60_000)).toISOString(),
  }
  const signed = signPlanStatement(statement, key)
  return {
    id, salt, statement, sig: signed.sig, binding: planBinding(statement), tree, targets,
    envelope: (position, over = {}, approvals = []) => {
      const t = targets[position] as PlanTarget
      const writ: Writ = {
        v: WRIT_VERSION, run_id: planRunId(id, position), node_id: t.node_id, node_name: `${t.node_id}.example`, action: t.action, pack: t.pack,
        pack_digest: t.pack_digest, args: t.args, reason: statement.reason, requester: statement.requester, approvals,
        request_hash: statement.request_hash, options: t.options ?? {}, binding_salt: salt,
        issued_at: statement.issued_at, expires_at: statement.expires_at, nonce: newNonce(), ...over,
      }
      return { writ, key_id: key.keyId, plan: { statement, sig: signed.sig, position, proof: encodeProof(tree.proof(position)) } }
    },
  }
}
