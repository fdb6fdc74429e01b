/**
 * Which standing grant covers a request the policy would hold for approval —
 * a run, or the gated targets of a plan, one use each — spending its uses. Read from the bucket at every request (a grant
 * revoked a moment ago on another replica covers nothing) and spent with a
 * revision-checked update (replicas never spend one use twice). A grant
 * covers only while its approvers still satisfy the decision as it stands —
 * policy's groups and quorum, and, where the approver registry gates the
 * action, enough people whose passkeys the published registry still lists.
 */
import { canonicalJson } from '@writ/packs/protocol'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import type { PolicyDecision } from '../policy/index.js'
import type { GrantedCover, Run } from '../runs/index.js'
import type { GrantRecord, GrantStatus } from './grant-schemas.js'
import type { GrantStore } from './grant-store.js'
import type { GrantPasskeys } from './grant-service.js'

/**
 * What covering a request gives the run path (runs/ defines it): the answer's
 * `grant`, the signed statement for the writ, and `release()`, which gives the
 * uses back when what it covered is not dispatched after all (its requester's
 * budget is spent, the plan is not stored).
 */
export type GrantCover = GrantedCover

/** The request the run path asks a grant to cover. */
export interface CoverRequest {
  principal: Principal
  run: Pick<Run, 'action' | 'risk' | 'node_id' | 'args'>
  decision: Extract<PolicyDecision, { decision: 'require_approval' }>
}

/** A plan's gated targets, which one grant must cover together (one use each), under the plan's one decision. */
export interface PlanCoverRequest {
  principal: Principal
  action: string
  risk: Run['risk']
  targets: ReadonlyArray<Pick<Run, 'node_id' | 'args'>>
  decision: Pick<Extract<PolicyDecision, { decision: 'require_approval' }>, 'approver_groups' | 'quorum'>
}

export interface CoverDeps {
  store: GrantStore
  principals: PrincipalRegistry
  passkeys: Pick<GrantPasskeys, 'registry' | 'requirement'> | undefined
  status: (g: GrantRecord) => GrantStatus
}

/** The grant expiring first among those that cover the run, with one use spent; undefined when none does. */
export function coverRequest(d: CoverDeps, req: CoverRequest): Promise<GrantCover | undefined> {
  const { principal, run, decision } = req
  return coverTargets(d, { principal, action: run.action, risk: run.risk, targets: [run], decision })
}

/**
 * The grant expiring first among those that cover every target, with one use
 * spent per target in one revision-checked update — all of them or none;
 * undefined when no grant covers them all.
 */
export async function coverTargets(d: CoverDeps, req: PlanCoverRequest): Promise<GrantCover | undefined> {
  const n = req.targets.length
  const candidates = (await d.store.forPrincipal(req.principal.id))
    .map((s) => s.record)
    .filter((g) => covers(d, g, req))
    .sort((a, b) => a.terms.expires_at.localeCompare(b.terms.expires_at))
  for (const candidate of candidates) {
    let spent: GrantRecord | undefined
    const done = await d.store.update(candidate.terms.id, (g) => {
      if (!covers(d, g, req)) return undefined
      spent = { ...g, uses_spent: g.uses_spent + n }
      return spent
    })
    if (done?.written && spent?.signed) {
      const t = spent.terms
      return {
        use: { id: t.id, uses_left: t.uses === null ? null : t.uses - spent.uses_spent, expires_at: t.expires_at }, signed: spent.signed,
        release: async () => { await d.store.update(t.id, (g) => (g.uses_spent > 0 ? { ...g, uses_spent: Math.max(0, g.uses_spent - n) } : undefined)) },
      }
    }
  }
  return undefined
}

function covers(d: CoverDeps, g: GrantRecord, req: PlanCoverRequest): boolean {
  const t = g.terms
  if (d.status(g) !== 'active' || !g.signed || req.targets.length === 0) return false
  if (t.uses !== null && g.uses_spent + req.targets.length > t.uses) return false
  if (t.principal.id !== req.principal.id || t.principal.kind !== req.principal.kind || t.action !== req.action) return false
  const args = t.args === 'any' ? undefined : canonicalJson(t.args)
  for (const target of req.targets) {
    if (t.node_id !== '*' && t.node_id !== target.node_id) return false
    if (args !== undefined && args !== canonicalJson(target.args)) return false
  }
  // The approvers must still be what policy asks for now: enough distinct people from its groups.
  const fit = g.approvals.filter((a) => (d.principals.get(a.by)?.groups ?? []).some((x) => req.decision.approver_groups.includes(x)))
  if (new Set(fit.map((a) => a.person)).size < req.decision.quorum) return false
  // Where the registry gates the action now, so must the grant's passkeys: as many people as it asks, in its groups, with passkeys it still lists.
  const gate = d.passkeys?.requirement(req.action, req.risk)
  return gate === undefined || passkeyPeople(d, g, gate.groups) >= gate.quorum
}

/** Distinct people whose approval of `g` is signed with a passkey the published registry lists for them in one of `groups`. */
export function passkeyPeople(d: Pick<CoverDeps, 'passkeys'>, g: GrantRecord, groups: readonly string[]): number {
  const registry = d.passkeys?.registry
  const people = new Set<string>()
  for (const a of g.approvals) {
    const entry = a.passkey && registry?.approvers.find((e) => e.credential_id === a.passkey?.credential_id && e.operator === a.by)
    if (entry && entry.groups.some((x) => groups.includes(x))) people.add(entry.person)
  }
  return people.size
}
