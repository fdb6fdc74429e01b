/**
 * Standing grants: an approval given in advance, bounded in time and uses,
 * for one principal, one action, one node (or all) and exact arguments (or
 * any). Operators in the action's approver groups give them; a grant for an
 * action whose policy asks for a quorum of Q is active once Q distinct people
 * approved its digest (the grantor is the first). While active, unexpired,
 * unrevoked and with uses left, it covers a request the policy would hold for
 * approval: the run dispatches at once, and its writ carries the grant's
 * signed statement, which the runner checks like an approval.
 */
import { randomBytes } from 'node:crypto'
import { prepareInvocation, type PackCatalog } from '@writ/packs'
import { canonicalJson, grantDigest, signGrant, type GrantTerms, type SigningKey } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import type { AuditChain } from '../audit/index.js'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import { durationMs } from '../config.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { ActionNotFound, BadArgs, Forbidden, NodeNotFound, PolicyDenied, requirePlainText, withDetails } from '../http/index.js'
import { policyNodeOf, type Policy, type PolicyDecision } from '../policy/index.js'
import { redactArgs, sensitiveArgNames, type Run } from '../runs/index.js'
import {
  GrantAlreadyApproved, GrantDigestMismatch, GrantLifetimeTooLong, GrantNeedsPasskey, GrantNotAnApprover, GrantNotFound, GrantNotNeeded, GrantNotPending, GrantRevoked,
  GrantSelfApproval, UnknownPrincipal,
} from './grant-errors.js'
import type { GrantRecord, GrantRequest, GrantStatus, GrantUse, ShownGrant } from './grant-schemas.js'
import type { GrantStore } from './grant-store.js'

export interface GrantServiceDeps {
  store: GrantStore
  audit: AuditChain
  catalog: PackCatalog
  fleet: FleetView
  policy: Policy
  principals: PrincipalRegistry
  /** The dispatch key: it signs a grant's statement once its quorum is reached. */
  key: SigningKey
  /** `grants.max_lifetime`. */
  maxLifetimeMs: number
  /** What the approver registry demands for an action, if anything (passkey-signed approvals). */
  passkeyRequirement: (action: string, risk: Run['risk']) => { why: string } | undefined
  log: Logger
  now?: () => number
}

/** What covering a request gives the run path: the answer's `grant`, and the signed statement for the writ. */
export interface GrantCover {
  use: GrantUse, signed: NonNullable<GrantRecord['signed']>
  /** Gives the use back when the run it covered is not dispatched after all (its requester's budget is spent). */
  release(): Promise<void>
}

/** The request the run path asks a grant to cover. */
export interface CoverRequest {
  principal: Principal
  run: Pick<Run, 'action' | 'risk' | 'node_id' | 'args'>
  decision: Extract<PolicyDecision, { decision: 'require_approval' }>
}

const newGrantId = (): string => `g${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`

export class GrantService {
  constructor(private readonly d: GrantServiceDeps) {}

  private now(): number { return (this.d.now ?? Date.now)() }

  status(g: GrantRecord): GrantStatus {
    if (g.state === 'revoked') return 'revoked'
    if (Date.parse(g.terms.expires_at) <= this.now()) return 'expired'
    if (g.terms.uses !== null && g.uses_spent >= g.terms.uses) return 'used_up'
    return g.state
  }

  present(g: GrantRecord): ShownGrant {
    const t = g.terms
    return {
      id: t.id, status: this.status(g), principal: t.principal.id, action: t.action, node: g.node_name,
      args: t.args === 'any' ? 'any' : redactArgs(t.args, sensitiveArgNames(this.d.catalog, t.action)),
      uses: t.uses, uses_left: t.uses === null ? null : Math.max(0, t.uses - g.uses_spent), expires_at: t.expires_at, reason: t.reason, digest: g.digest,
      quorum: g.quorum, approver_groups: g.approver_groups, approvals: g.approvals.map((a) => ({ by: a.by, at: a.at })),
      created_by: g.created_by, created_at: g.created_at,
      ...(g.activated_at ? { activated_at: g.activated_at } : {}),
      ...(g.revoked ? { revoked_by: g.revoked.by, revoked_at: g.revoked.at, ...(g.revoked.reason ? { revoke_reason: g.revoked.reason } : {}) } : {}),
    }
  }

  async list(filter: { status?: GrantStatus | undefined, principal?: string | undefined } = {}): Promise<ShownGrant[]> {
    const all = await (filter.principal ? this.d.store.forPrincipal(filter.principal) : this.d.store.list())
    return all.map((g) => this.present(g.record))
      .filter((g) => (!filter.status || g.status === filter.status) && (!filter.principal || g.principal === filter.principal))
      .sort((a, b) => b.created_at.localeCompare(a.created_at))
  }

  async get(id: string): Promise<GrantRecord> {
    const hit = await this.d.store.get(id)
    if (!hit) throw new GrantNotFound(id)
    return hit.record
  }

  /**
   * Creates a grant with the grantor's approval. Every check comes before
   * anything is written: a refusal changes nothing.
   */
  async create(grantor: Principal, req: GrantRequest): Promise<ShownGrant> {
    if (grantor.kind !== 'operator') throw new Forbidden('only operators give standing grants')
    requirePlainText({ reason: req.reason })
    const target = this.d.principals.get(req.principal)
    if (!target) throw withDetails(new UnknownPrincipal(req.principal), { principal: req.principal })
    const hit = this.d.catalog.lookup(req.action)
    if (!hit.ok) throw new ActionNotFound(req.action)
    const { pack, action } = hit
    const node = req.node === '*' ? undefined : this.d.fleet.find(req.node)
    if (req.node !== '*' && !node) throw new NodeNotFound(req.node)
    let args: GrantTerms['args'] = 'any'
    if (req.args !== 'any') {
      const prepared = prepareInvocation(action.spec, req.args, pack.dir)
      if (!prepared.ok) throw withDetails(new BadArgs(action.id, prepared.errors.map((e) => e.message).join('; ')), { args: prepared.errors })
      args = prepared.args
    }
    const lifetimeMs = durationMs(req.expires_in)
    if (lifetimeMs > this.d.maxLifetimeMs) throw new GrantLifetimeTooLong(req.expires_in, `${Math.round(this.d.maxLifetimeMs / 60_000)}m`)
    const gate = this.d.passkeyRequirement(action.id, action.spec.risk)
    if (gate) throw new GrantNeedsPasskey(action.id, gate.why)
    const gated = this.gatedDecisions(target, action.id, action.spec.risk, node)
    for (const d of gated) if (!d.approver_groups.some((g) => grantor.groups.includes(g))) throw new GrantNotAnApprover(action.id, d.approver_groups.join(', '), grantor.id)
    if (grantor.id === target.id || grantor.person === target.person) throw new GrantSelfApproval(grantor.id, target.id)
    const strictest = gated.reduce((a, b) => (b.quorum > a.quorum ? b : a))

    const now = this.now()
    const terms: GrantTerms = {
      id: newGrantId(), principal: { id: target.id, kind: target.kind }, action: action.id, node_id: node?.id ?? '*', args,
      uses: req.uses ?? null, reason: req.reason, issued_at: new Date(now).toISOString(), expires_at: new Date(now + lifetimeMs).toISOString(),
    }
    const digest = grantDigest(terms)
    const at = new Date(now).toISOString()
    let record: GrantRecord = {
      terms, node_name: node?.name ?? '*', digest, state: 'pending', approver_groups: strictest.approver_groups, quorum: strictest.quorum,
      approvals: [{ by: grantor.id, person: grantor.person, at, digest }], uses_spent: 0, created_by: grantor.id, created_at: at,
    }
    record = this.activatedIfQuorum(record)
    // On the chain before the grant can cover anything.
    await this.d.audit.append({
      type: 'grant.created', actor: { id: grantor.id, kind: grantor.kind }, action: action.id, node: record.node_name,
      data: {
        grant_id: terms.id, principal: target.id, args: this.present(record).args, uses: terms.uses, expires_at: terms.expires_at, reason: terms.reason,
        digest, quorum: record.quorum, approver_groups: record.approver_groups, state: record.state,
      },
    })
    await this.d.store.create(record)
    return this.present(record)
  }

  /** Policy's decisions for `target` running `action` on the node (or on every known node): those that hold it for approval. */
  private gatedDecisions(target: Principal, action: string, risk: Run['risk'], node: FleetNode | undefined): Array<Extract<PolicyDecision, { decision: 'require_approval' }>> {
    const nodes = node ? [node] : this.d.fleet.list()
    if (nodes.length === 0) throw new NodeNotFound('*')
    const decisions = nodes.map((n) => ({ n, d: this.d.policy.evaluate({ action, risk, node: policyNodeOf(n), principal: target }) }))
    const first = decisions[0] as (typeof decisions)[number]
    // On one named node a denial is final; across the fleet, nodes where policy denies stay denied (a grant never overrides a deny).
    if (node && first.d.decision === 'deny') throw withDetails(new PolicyDenied(first.d.reason), { rule: first.d.rule })
    const gated = decisions.map((x) => x.d).filter((d): d is Extract<PolicyDecision, { decision: 'require_approval' }> => d.decision === 'require_approval')
    if (gated.length === 0) {
      const allowed = decisions.find((x) => x.d.decision === 'allow')
      if (!allowed) throw new PolicyDenied(`no node lets ${target.id} run ${action}`)
      throw new GrantNotNeeded(target.id, action, node ? node.name : 'any node', allowed.d.rule ?? '')
    }
    return gated
  }

  private activatedIfQuorum(g: GrantRecord): GrantRecord {
    if (g.state !== 'pending' || g.approvals.length < g.quorum) return g
    const statement = {
      v: 1 as const, kind: 'writ.grant' as const, ...g.terms, digest: g.digest, approvals: g.approvals.map((a) => ({ by: a.by, at: a.at, digest: a.digest })),
    }
    return { ...g, state: 'active', activated_at: new Date(this.now()).toISOString(), signed: signGrant(statement, this.d.key) }
  }

  /** Another approver co-signs a pending grant; it is active once its quorum of distinct people approved its digest. */
  async approve(principal: Principal, id: string, digest: string | undefined): Promise<ShownGrant> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators approve standing grants')
    let wrote: GrantRecord | undefined
    const done = await this.d.store.update(id, (g) => {
      const status = this.status(g)
      if (g.state === 'revoked' && g.revoked) throw new GrantRevoked(id, g.revoked.by, g.revoked.at)
      if (status !== 'pending') throw new GrantNotPending(id, status)
      if (digest !== undefined && digest !== g.digest) throw new GrantDigestMismatch(digest, id, g.digest)
      if (!principal.groups.some((x) => g.approver_groups.includes(x))) throw new GrantNotAnApprover(g.terms.action, g.approver_groups.join(', '), principal.id)
      const target = this.d.principals.get(g.terms.principal.id)
      if (principal.id === g.terms.principal.id || principal.person === target?.person) throw new GrantSelfApproval(principal.id, g.terms.principal.id)
      if (g.approvals.some((a) => a.person === principal.person)) throw new GrantAlreadyApproved(principal.id, id, g.quorum - g.approvals.length)
      wrote = this.activatedIfQuorum({ ...g, approvals: [...g.approvals, { by: principal.id, person: principal.person, at: new Date(this.now()).toISOString(), digest: g.digest }] })
      return wrote
    })
    if (!done) throw new GrantNotFound(id)
    const g = done.record
    await this.d.audit.append({
      type: 'grant.approved', actor: { id: principal.id, kind: principal.kind }, action: g.terms.action, node: g.node_name,
      data: { grant_id: id, digest: g.digest, approvals_so_far: g.approvals.length, quorum: g.quorum, state: g.state },
    })
    return this.present(g)
  }

  /** Revokes a grant at once for every replica: the next request it would have covered waits for approval again. */
  async revoke(principal: Principal, id: string, reason: string | undefined): Promise<ShownGrant> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators revoke standing grants')
    if (reason !== undefined) requirePlainText({ reason })
    const done = await this.d.store.update(id, (g) => {
      if (g.revoked) throw new GrantRevoked(id, g.revoked.by, g.revoked.at)
      return { ...g, state: 'revoked', revoked: { by: principal.id, at: new Date(this.now()).toISOString(), ...(reason ? { reason } : {}) } }
    })
    if (!done) throw new GrantNotFound(id)
    const g = done.record
    await this.d.audit.append({
      type: 'grant.revoked', actor: { id: principal.id, kind: principal.kind }, action: g.terms.action, node: g.node_name,
      data: { grant_id: id, ...(reason ? { reason } : {}), uses_spent: g.uses_spent },
    })
    return this.present(g)
  }

  /**
   * A grant that covers this request, with one of its uses spent (revision-
   * checked, so replicas never spend one use twice), or undefined. Read from
   * the bucket now: a grant revoked a moment ago on another replica covers
   * nothing. It covers only if its approvers would satisfy the policy
   * decision as it stands now (groups and quorum).
   */
  async cover(req: CoverRequest): Promise<GrantCover | undefined> {
    if (this.d.passkeyRequirement(req.run.action, req.run.risk)) return undefined
    const candidates = (await this.d.store.forPrincipal(req.principal.id))
      .map((s) => s.record)
      .filter((g) => this.covers(g, req))
      .sort((a, b) => a.terms.expires_at.localeCompare(b.terms.expires_at))
    for (const candidate of candidates) {
      let spent: GrantRecord | undefined
      const done = await this.d.store.update(candidate.terms.id, (g) => {
        if (!this.covers(g, req)) return undefined
        spent = { ...g, uses_spent: g.uses_spent + 1 }
        return spent
      })
      if (done?.written && spent?.signed) {
        const t = spent.terms
        return {
          use: { id: t.id, uses_left: t.uses === null ? null : t.uses - spent.uses_spent, expires_at: t.expires_at }, signed: spent.signed,
          release: async () => { await this.d.store.update(t.id, (g) => (g.uses_spent > 0 ? { ...g, uses_spent: g.uses_spent - 1 } : undefined)) },
        }
      }
    }
    return undefined
  }

  private covers(g: GrantRecord, req: CoverRequest): boolean {
    const t = g.terms
    if (this.status(g) !== 'active' || !g.signed) return false
    if (t.principal.id !== req.principal.id || t.principal.kind !== req.principal.kind || t.action !== req.run.action) return false
    if (t.node_id !== '*' && t.node_id !== req.run.node_id) return false
    if (t.args !== 'any' && canonicalJson(t.args) !== canonicalJson(req.run.args)) return false
    // The approvers must still be what policy asks for now: enough distinct people from its groups.
    const fit = g.approvals.filter((a) => (this.d.principals.get(a.by)?.groups ?? []).some((x) => req.decision.approver_groups.includes(x)))
    return new Set(fit.map((a) => a.person)).size >= req.decision.quorum
  }
}
