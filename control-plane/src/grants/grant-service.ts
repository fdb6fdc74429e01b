/**
 * Standing grants: an approval given in advance, bounded in time and uses,
 * for one principal, one action, one node (or all) and exact arguments (or
 * any). Operators in the action's approver groups give them; a grant for an
 * action whose policy asks for a quorum of Q is active once Q distinct people
 * approved its digest (the grantor is the first). Where the approver registry
 * gates the action with passkeys, each approval is a passkey's signature over
 * the grant's digest (given after the grant exists, since its digest names its
 * id and issue time), and the runner verifies them as it would a run's. While
 * active, unexpired, unrevoked and with uses left, it covers a request the
 * policy would hold for approval (grant-cover.ts): the run dispatches at once,
 * and its writ carries the grant's signed statement, which the runner checks
 * like an approval.
 */
import { randomBytes } from 'node:crypto'
import { prepareInvocation, type PackCatalog } from '@writ/packs'
import { grantDigest, signGrant, type GrantTerms, type PasskeyAssertion, type SigningKey } from '@writ/packs/protocol'
import type { ApprovalRequirement, ApproverRegistry } from '@writ/packs/approvers'
import type { Logger } from 'pino'
import type { AuditChain } from '../audit/index.js'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import { durationMs } from '../config.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { ActionNotFound, BadArgs, Forbidden, NodeNotFound, PasskeyRejected, PolicyDenied, requirePlainText, withDetails } from '../http/index.js'
import type { PasskeyRun } from '../passkeys/index.js'
import { policyNodeOf, type Policy, type PolicyDecision } from '../policy/index.js'
import { gatedByRegistry, redactArgs, sensitiveArgNames, type Run } from '../runs/index.js'
import {
  GrantAlreadyApproved, GrantDigestMismatch, GrantLifetimeTooLong, GrantNotAnApprover, GrantPasskeyRequired, GrantNotFound, GrantNotNeeded, GrantNotPending, GrantRevoked,
  GrantSelfApproval, UnknownPrincipal,
} from './grant-errors.js'
import type { GrantRecord, GrantRequest, GrantStatus, ShownGrant } from './grant-schemas.js'
import type { GrantStore } from './grant-store.js'
import { coverRequest, coverTargets, passkeyPeople, type CoverRequest, type GrantCover, type PlanCoverRequest } from './grant-cover.js'

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
  /** Passkey-signed approvals, when configured: what the approver registry demands of an action, and the check of one assertion. */
  passkeys?: GrantPasskeys | undefined
  /** The Grants page, where a grant's approvers sign it with their passkeys. */
  grantsUrl: string
  log: Logger
  now?: () => number
}

/** What grants need of the passkeys feature (control-plane/src/passkeys). */
export interface GrantPasskeys {
  readonly registry: ApproverRegistry | undefined
  requirement(action: string, risk: Run['risk']): (ApprovalRequirement & { rule: string, why: string }) | undefined
  verifyApproval(principal: Principal, subject: PasskeyRun, assertion: PasskeyAssertion): Promise<void>
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
      quorum: g.quorum, approver_groups: g.approver_groups,
      approvals: g.approvals.map((a) => ({ by: a.by, at: a.at, ...(a.passkey ? { passkey: a.passkey.credential_id } : {}) })),
      ...(g.passkey_required ? { passkey_required: true } : {}),
      ...(g.passkey_required && this.status(g) === 'pending' ? { sign_url: `${this.d.grantsUrl}#grant-${t.id}` } : {}),
      ...this.unsigned(g),
      created_by: g.created_by, created_at: g.created_at,
      ...(g.activated_at ? { activated_at: g.activated_at } : {}),
      ...(g.revoked ? { revoked_by: g.revoked.by, revoked_at: g.revoked.at, ...(g.revoked.reason ? { revoke_reason: g.revoked.reason } : {}) } : {}),
    }
  }

  /**
   * An active grant the approver registry's passkey rule for its action no
   * longer finds enough signatures on (made before the registry gated it, or
   * an approver's passkey left the registry): it covers nothing, and says so.
   */
  private unsigned(g: GrantRecord): { covers_nothing?: string } {
    if (this.status(g) !== 'active' || !this.d.passkeys) return {}
    const hit = this.d.catalog.lookup(g.terms.action)
    const gate = hit.ok ? this.d.passkeys.requirement(hit.action.id, hit.action.spec.risk) : undefined
    if (!gate) return {}
    const signed = passkeyPeople({ passkeys: this.d.passkeys }, g, gate.groups)
    if (signed >= gate.quorum) return {}
    return { covers_nothing: `the approver registry asks ${gate.quorum} passkey signature(s) from ${gate.groups.join(', ')} for ${g.terms.action} (${gate.why}); this grant carries ${signed} it still lists, so it covers nothing: give a new one` }
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
    const gate = this.d.passkeys?.requirement(action.id, action.spec.risk)
    const gated = this.gatedDecisions(target, action.id, action.spec.risk, node, gate)
    for (const d of gated) if (!d.approver_groups.some((g) => grantor.groups.includes(g))) throw new GrantNotAnApprover(action.id, d.approver_groups.join(', '), grantor.id)
    if (grantor.id === target.id || grantor.person === target.person) throw new GrantSelfApproval(grantor.id, target.id)
    const strictest = gated.reduce((a, b) => (b.quorum > a.quorum ? b : a))
    // Under the approver registry only passkey-signed approvals count, and at least its quorum of them.
    const quorum = Math.max(strictest.quorum, gate?.quorum ?? 0)

    const now = this.now()
    const terms: GrantTerms = {
      id: newGrantId(), principal: { id: target.id, kind: target.kind }, action: action.id, node_id: node?.id ?? '*', args,
      uses: req.uses ?? null, reason: req.reason, issued_at: new Date(now).toISOString(), expires_at: new Date(now + lifetimeMs).toISOString(),
    }
    const digest = grantDigest(terms)
    const at = new Date(now).toISOString()
    let record: GrantRecord = {
      terms, node_name: node?.name ?? '*', digest, state: 'pending', approver_groups: strictest.approver_groups, quorum,
      // A passkey signs the digest, which exists only now: the grantor's approval is given next, with it (approve()).
      approvals: gate ? [] : [{ by: grantor.id, person: grantor.person, at, digest }], uses_spent: 0, created_by: grantor.id, created_at: at,
      ...(gate ? { passkey_required: true } : {}),
    }
    record = this.activatedIfQuorum(record)
    // On the chain before the grant can cover anything.
    await this.d.audit.append({
      type: 'grant.created', actor: { id: grantor.id, kind: grantor.kind }, action: action.id, node: record.node_name,
      data: {
        grant_id: terms.id, principal: target.id, args: this.present(record).args, uses: terms.uses, expires_at: terms.expires_at, reason: terms.reason,
        digest, quorum: record.quorum, approver_groups: record.approver_groups, state: record.state, ...(gate ? { passkey_required: true } : {}),
      },
    })
    await this.d.store.create(record)
    return this.present(record)
  }

  /** Policy's decisions for `target` running `action` on the node (or on every known node): those that hold it for approval. */
  private gatedDecisions(
    target: Principal, action: string, risk: Run['risk'], node: FleetNode | undefined, gate: Parameters<typeof gatedByRegistry>[1],
  ): Array<Extract<PolicyDecision, { decision: 'require_approval' }>> {
    const nodes = node ? [node] : this.d.fleet.list()
    if (nodes.length === 0) throw new NodeNotFound('*')
    // As the run path decides: where the registry gates the action, what policy allows still waits for passkey approvals.
    const decisions = nodes.map((n) => ({ n, d: gatedByRegistry(this.d.policy.evaluate({ action, risk, node: policyNodeOf(n), principal: target }), gate) }))
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
    const counted = g.passkey_required ? g.approvals.filter((a) => a.passkey).length : g.approvals.length
    if (g.state !== 'pending' || counted < g.quorum) return g
    const statement = {
      v: 1 as const, kind: 'writ.grant' as const, ...g.terms, digest: g.digest,
      approvals: g.approvals.map((a) => ({ by: a.by, at: a.at, digest: a.digest, ...(a.passkey ? { passkey: a.passkey } : {}) })),
    }
    return { ...g, state: 'active', activated_at: new Date(this.now()).toISOString(), signed: signGrant(statement, this.d.key) }
  }

  /** Why `principal` may not approve `g` now (status, digest, groups, self, twice), as a typed error; undefined when they may. */
  private approvalRefusal(principal: Principal, g: GrantRecord, digest: string | undefined): Error | undefined {
    const id = g.terms.id
    const status = this.status(g)
    if (g.state === 'revoked' && g.revoked) return new GrantRevoked(id, g.revoked.by, g.revoked.at)
    if (status !== 'pending') return new GrantNotPending(id, status)
    if (digest !== undefined && digest !== g.digest) return new GrantDigestMismatch(digest, id, g.digest)
    if (!principal.groups.some((x) => g.approver_groups.includes(x))) return new GrantNotAnApprover(g.terms.action, g.approver_groups.join(', '), principal.id)
    const target = this.d.principals.get(g.terms.principal.id)
    if (principal.id === g.terms.principal.id || principal.person === target?.person) return new GrantSelfApproval(principal.id, g.terms.principal.id)
    const counted = g.passkey_required ? g.approvals.filter((a) => a.passkey) : g.approvals
    if (g.approvals.some((a) => a.person === principal.person)) return new GrantAlreadyApproved(principal.id, id, g.quorum - counted.length)
    return undefined
  }

  /**
   * The approver's passkey over the grant's digest, checked against the
   * published registry — required where the grant was made under it, and
   * verified whenever one is sent (runners verify every assertion a grant
   * carries). Who may approve is said first: a passkey makes nobody an approver.
   */
  private async checkedPasskey(principal: Principal, g: GrantRecord, passkey: PasskeyAssertion | undefined): Promise<PasskeyAssertion | undefined> {
    const hit = this.d.catalog.lookup(g.terms.action)
    if (!hit.ok) throw new ActionNotFound(g.terms.action)
    const need = g.passkey_required ? this.d.passkeys?.requirement(g.terms.action, hit.action.spec.risk) : undefined
    if (!passkey) {
      if (g.passkey_required) throw withDetails(new GrantPasskeyRequired(g.terms.id, need?.why ?? 'the grant was made under it', `${this.d.grantsUrl}#grant-${g.terms.id}`), { grant_id: g.terms.id, digest: g.digest })
      return undefined
    }
    if (!this.d.passkeys) throw new PasskeyRejected('passkeys are not configured on this control plane; approve without one')
    await this.d.passkeys.verifyApproval(principal, {
      id: g.terms.id, action: g.terms.action, risk: hit.action.spec.risk, requester: { id: g.terms.principal.id }, binding: g.digest,
      signs: `grant ${g.terms.id}'s digest`, selfApproval: () => new GrantSelfApproval(`${principal.id} (by the passkey's registered person)`, g.terms.principal.id),
    }, passkey)
    return passkey
  }

  /**
   * Another approver co-signs a pending grant (or, under the approver
   * registry, its grantor signs it first); it is active once its quorum of
   * distinct people approved its digest.
   */
  async approve(principal: Principal, id: string, digest: string | undefined, passkey?: PasskeyAssertion): Promise<ShownGrant> {
    if (principal.kind !== 'operator') throw new Forbidden('only operators approve standing grants')
    const before = await this.get(id)
    const refusal = this.approvalRefusal(principal, before, digest)
    if (refusal) throw refusal
    const signed = await this.checkedPasskey(principal, before, passkey)
    const done = await this.d.store.update(id, (g) => {
      const changed = this.approvalRefusal(principal, g, digest ?? before.digest)
      if (changed) throw changed
      const approval = { by: principal.id, person: principal.person, at: new Date(this.now()).toISOString(), digest: g.digest, ...(signed ? { passkey: signed } : {}) }
      return this.activatedIfQuorum({ ...g, approvals: [...g.approvals, approval] })
    })
    if (!done) throw new GrantNotFound(id)
    const g = done.record
    await this.d.audit.append({
      type: 'grant.approved', actor: { id: principal.id, kind: principal.kind }, action: g.terms.action, node: g.node_name,
      data: { grant_id: id, digest: g.digest, approvals_so_far: g.approvals.length, quorum: g.quorum, state: g.state, ...(signed ? { passkey: signed.credential_id } : {}) },
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

  private get covering() {
    return { store: this.d.store, principals: this.d.principals, passkeys: this.d.passkeys, status: (g: GrantRecord) => this.status(g) }
  }

  /** A grant that covers this request, with one of its uses spent, or undefined (grant-cover.ts). */
  cover(req: CoverRequest): Promise<GrantCover | undefined> {
    return coverRequest(this.covering, req)
  }

  /** A grant that covers every gated target of a plan, with one use spent per target, or undefined (grant-cover.ts). */
  coverPlan(req: PlanCoverRequest): Promise<GrantCover | undefined> {
    return coverTargets(this.covering, req)
  }
}
