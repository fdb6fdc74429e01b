/**
 * A standing grant as a writ carries it: an approval given in advance for one
 * principal, one action, one node (or every node) and exact arguments (or
 * any), bounded in time and uses. The control plane signs the statement once,
 * when the grant's approvers reach its quorum; every writ the grant covers
 * carries that signed statement, and the runner checks it like an approval:
 * the signature, that the writ is what the grant covers, the expiry, and the
 * uses it has already accepted for its own node (its journal counts them).
 *
 * The grant's digest is what its approvers approve: the same fields under a
 * domain tag of their own, so it can never equal a run's binding.
 */
import { createHash, sign } from 'node:crypto'
import { canonicalJson } from '../canonical-json.js'
import type { GrantStatement, GrantTerms, SignedGrant } from './messages.js'
import { verifySignature, type SigningKey, type TrustedKey } from './writ-signing.js'

const DOMAIN = 'writ.v1.grant'

/** SHA-256 (hex) over the canonical JSON of the grant's terms: what each approver approves. */
export function grantDigest(t: GrantTerms): string {
  const bound = {
    domain: DOMAIN, id: t.id, principal: { id: t.principal.id, kind: t.principal.kind }, action: t.action, node_id: t.node_id,
    args: t.args, uses: t.uses, reason: t.reason, issued_at: t.issued_at, expires_at: t.expires_at,
  }
  return createHash('sha256').update(canonicalJson(bound)).digest('hex')
}

export function signGrant(statement: GrantStatement, key: SigningKey): SignedGrant {
  const sig = sign(null, Buffer.from(canonicalJson(statement)), key.privateKey).toString('base64')
  return { statement, key_id: key.keyId, sig }
}

export type GrantCheck =
  | { ok: true }
  | { ok: false, code: 'bad_grant' | 'grant_expired' | 'grant_used_up' | 'self_approval', message: string }

/** What the runner knows besides the writ: its node, the trusted keys, the time and how many uses of the grant it accepted. */
export interface GrantContext {
  nodeId: string
  trusted: readonly TrustedKey[]
  now: number
  clockSkewMs: number
  usesAccepted: (grantId: string) => number
}

/** The writ fields a grant must cover. */
export interface GrantedWrit { node_id: string, action: string, args: Record<string, unknown>, requester: { id: string, kind: string } }

/**
 * Checks a grant a writ carries (`sent` is the statement exactly as
 * received, so zod defaults cannot change what is verified).
 */
export function checkGrant(writ: GrantedWrit, grant: SignedGrant, sent: unknown, ctx: GrantContext): GrantCheck {
  const s = grant.statement
  const sig = verifySignature(sent, grant.key_id, grant.sig, ctx.trusted)
  if (!sig.ok) return { ok: false, code: 'bad_grant', message: `grant ${s.id}: ${sig.message}` }
  const { v: _v, kind: _k, digest, approvals, ...terms } = s
  const expected = grantDigest(terms)
  if (digest !== expected) return { ok: false, code: 'bad_grant', message: `grant ${s.id} names digest ${digest.slice(0, 12)}…, its terms hash to ${expected.slice(0, 12)}…` }
  const people = new Set<string>()
  for (const a of approvals) {
    if (a.digest !== digest) return { ok: false, code: 'bad_grant', message: `the approval of grant ${s.id} by ${a.by} is bound to another digest` }
    if (a.by === s.principal.id) return { ok: false, code: 'self_approval', message: `grant ${s.id} was approved by ${a.by}, the principal it is for` }
    if (people.has(a.by)) return { ok: false, code: 'bad_grant', message: `${a.by} is counted twice among the approvals of grant ${s.id}` }
    people.add(a.by)
  }
  if (s.principal.id !== writ.requester.id || s.principal.kind !== writ.requester.kind) {
    return { ok: false, code: 'bad_grant', message: `grant ${s.id} is for ${s.principal.id}, the writ was requested by ${writ.requester.id}` }
  }
  if (s.action !== writ.action) return { ok: false, code: 'bad_grant', message: `grant ${s.id} covers ${s.action}, not ${writ.action}` }
  if (s.node_id !== '*' && s.node_id !== ctx.nodeId) return { ok: false, code: 'bad_grant', message: `grant ${s.id} covers node ${s.node_id}, not this one (${ctx.nodeId})` }
  if (s.node_id !== '*' && s.node_id !== writ.node_id) return { ok: false, code: 'bad_grant', message: `grant ${s.id} covers node ${s.node_id}, the writ is for ${writ.node_id}` }
  if (s.args !== 'any' && canonicalJson(s.args) !== canonicalJson(writ.args)) {
    return { ok: false, code: 'bad_grant', message: `grant ${s.id} covers other arguments than the writ's` }
  }
  if (ctx.now > Date.parse(s.expires_at) + ctx.clockSkewMs) return { ok: false, code: 'grant_expired', message: `grant ${s.id} expired at ${s.expires_at}` }
  if (Date.parse(s.issued_at) > ctx.now + ctx.clockSkewMs) return { ok: false, code: 'bad_grant', message: `grant ${s.id} was issued in the future (${s.issued_at})` }
  const used = ctx.usesAccepted(s.id)
  if (s.uses !== null && used >= s.uses) {
    return { ok: false, code: 'grant_used_up', message: `grant ${s.id} covers ${s.uses} run(s) and this runner already accepted ${used} under it` }
  }
  return { ok: true }
}
