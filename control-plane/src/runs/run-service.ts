/**
 * The path every run request takes: validate against the authoritative
 * catalog → find the node → check its pack digest → policy → record → audit →
 * sign and dispatch. Every refusal is a coded error and, since the caller is
 * authenticated, an audit event; none of them dispatches anything.
 */
import { prepareInvocation, PackCatalog } from '@writ/packs'
import type { Logger } from 'pino'
import type { AuditChain, AuditEventBody } from '../audit/index.js'
import type { Dispatcher } from './dispatcher.js'
import type { FleetView } from '../fleet/index.js'
import {
  ActionNotFound, ActionNotOnNode, BadArgs, DigestMismatch, NodeNotFound, NotCancelable, PolicyDenied, RunNotFound, withDetails,
} from '../http/index.js'
import type { Metrics } from '../metrics.js'
import type { Policy, PolicyDecision } from '../policy/index.js'
import type { Principal } from '../auth/index.js'
import { isTerminal, type Run } from './run-record.js'
import { newRunId, type RunStore } from './run-store.js'
import type { RunRequest } from './run-schemas.js'
import { presentRun, redactArgs, sensitiveArgNames } from './sensitive-args.js'

export interface RunServiceDeps {
  catalog: PackCatalog, fleet: FleetView, policy: Policy, store: RunStore, audit: AuditChain, dispatcher: Dispatcher,
  metrics: Metrics, log: Logger, instanceId: string, lostGraceMs: number,
}

export class RunService {
  constructor(private readonly d: RunServiceDeps) {}

  /** Agents see their own runs; operators see every run. */
  visible(principal: Principal, run: Pick<Run, 'requester'>): boolean {
    return principal.kind === 'operator' || run.requester.id === principal.id
  }

  /** `run` as a caller may read it (sensitive arguments redacted). */
  present(run: Run): Run { return presentRun(run, this.d.catalog) }

  async get(principal: Principal, id: string): Promise<Run> {
    const hit = await this.d.store.get(id)
    if (!hit || !this.visible(principal, hit.run)) throw new RunNotFound(id)
    return hit.run
  }

  async submit(principal: Principal, req: RunRequest): Promise<Run> {
    const { catalog, fleet, policy } = this.d
    const actor = { id: principal.id, kind: principal.kind }
    // Thrown errors reach the one error handler, which audits them for the authenticated caller.
    const hit = catalog.lookup(req.action)
    if (!hit.ok) throw new ActionNotFound(req.action)
    const { pack, action } = hit
    const node = fleet.find(req.node)
    if (!node) throw new NodeNotFound(req.node)
    const prepared = prepareInvocation(action.spec, req.args, pack.dir)
    if (!prepared.ok) {
      const err = withDetails(new BadArgs(action.id, prepared.errors.map((e) => e.message).join('; ')), { args: prepared.errors })
      throw err
    }
    const reported = node.packs.find((p) => p.id === pack.id)
    if (!reported) throw new ActionNotOnNode(node.name, pack.id)
    if (reported.digest !== pack.digest) {
      const err = withDetails(new DigestMismatch(`node "${node.name}" reports pack "${pack.id}" with digest ${reported.digest.slice(0, 12)}…, the catalog has ${pack.digest.slice(0, 12)}…: it gets no writ until they match`), { node_digest: reported.digest, catalog_digest: pack.digest })
      throw err
    }

    const decision = policy.evaluate({ action: action.id, risk: action.spec.risk, node: { id: node.id, name: node.name, ...node.nomad }, principal })
    const now = new Date().toISOString()
    const run: Run = {
      id: newRunId(), status: 'pending_approval', status_reason: '', action: action.id, pack: pack.id, pack_digest: pack.digest,
      risk: action.spec.risk, node_id: node.id, node_name: node.name, args: prepared.args, reason: req.reason, requester: actor,
      ...(req.session_id !== undefined ? { session_id: req.session_id } : {}), options: req.options ?? {},
      policy: policyOutcome(decision), created_at: now, updated_at: now, created_by_instance: this.d.instanceId,
    }
    const requested: AuditEventBody = {
      type: 'run.requested', actor, run_id: run.id, node: node.name, action: action.id,
      data: {
        args: redactArgs(run.args, sensitiveArgNames(catalog, action.id)),
        reason: run.reason, risk: run.risk, pack_digest: run.pack_digest, policy: run.policy,
        ...(run.session_id ? { session_id: run.session_id } : {}),
      },
    }

    if (decision.decision === 'deny') {
      run.status = 'denied'
      run.status_reason = `denied by policy${decision.rule ? ` rule "${decision.rule}"` : ''}: ${decision.reason}`
      run.finished_at = now
      await this.d.audit.append(requested)
      await this.d.store.create(run)
      this.d.metrics.inc('writ_runs_total', { status: 'denied' })
      throw withDetails(new PolicyDenied(decision.reason), { run_id: run.id, rule: decision.rule })
    }
    if (decision.decision === 'require_approval') {
      run.status_reason = `waiting for ${decision.quorum} approval(s) from ${decision.approver_groups.join(', ')} (policy rule "${decision.rule}")`
      await this.d.audit.append(requested)
      await this.d.store.create(run)
      this.d.metrics.inc('writ_runs_total', { status: 'pending_approval' })
      return run
    }
    if (!node.online) {
      run.status = 'node_offline'
      run.status_reason = `node ${node.name} has not sent a heartbeat since ${node.last_seen}`
      run.finished_at = now
      await this.d.audit.append(requested)
      await this.d.store.create(run)
      this.d.metrics.inc('writ_runs_total', { status: 'node_offline' })
      return run
    }
    return this.dispatch(run, requested)
  }

  /**
   * Records the run as dispatched, sends the signed writ, and records the
   * runner's answer. `requested`, when given, is audited alongside the record:
   * both are stored before the writ leaves.
   */
  async dispatch(run: Run, requested?: AuditEventBody): Promise<Run> {
    const action = this.d.catalog.lookup(run.action)
    const timeoutMs = action.ok ? PackCatalog.limits(action.action, run.options).timeoutMs : 60_000
    const now = Date.now()
    run.status = 'dispatched'
    run.status_reason = `writ sent to ${run.node_name}`
    run.dispatched_at = new Date(now).toISOString()
    run.deadline_at = new Date(now + timeoutMs + this.d.lostGraceMs).toISOString()
    run.updated_at = run.dispatched_at
    // The record exists before the writ leaves, so a fast result always finds it.
    await Promise.all([requested ? this.d.audit.append(requested) : undefined, this.d.store.create(run)])
    const outcome = await this.d.dispatcher.dispatch(run)
    const base = { actor: { id: 'control-plane', kind: 'system' as const }, run_id: run.id, node: run.node_name, action: run.action }
    let updated: Run | undefined
    switch (outcome.kind) {
      case 'accepted':
        ;[updated] = await Promise.all([
          this.d.store.update(run.id, (r) => r.status === 'dispatched' ? { ...r, status: 'running', status_reason: `accepted by ${r.node_name}` } : undefined),
          this.d.audit.append({ ...base, type: 'run.dispatched', data: { accepted: true, key_id: this.d.dispatcher.keyId, deadline_at: run.deadline_at } }),
        ])
        break
      case 'refused':
        updated = await this.d.store.update(run.id, (r) => isTerminal(r.status) ? undefined : { ...r, status: 'refused_by_runner', refusal: outcome.refusal, status_reason: `runner refused (${outcome.refusal.code}): ${outcome.refusal.message}`, finished_at: new Date().toISOString() })
        await this.d.audit.append({ ...base, type: 'run.refused', data: { refusal: outcome.refusal } })
        break
      case 'node_offline':
        updated = await this.d.store.update(run.id, (r) => isTerminal(r.status) ? undefined : { ...r, status: 'node_offline', status_reason: outcome.message, finished_at: new Date().toISOString() })
        await this.d.audit.append({ ...base, type: 'run.node_offline', data: { message: outcome.message } })
        break
      case 'no_ack':
        updated = await this.d.store.update(run.id, (r) => r.status === 'dispatched' ? { ...r, status_reason: `${outcome.message}; waiting for a result until ${r.deadline_at}` } : undefined)
        await this.d.audit.append({ ...base, type: 'run.dispatched', data: { accepted: null, message: outcome.message, deadline_at: run.deadline_at } })
        break
    }
    this.d.metrics.inc('writ_dispatches_total', { outcome: outcome.kind })
    return updated ?? run
  }

  async cancel(principal: Principal, id: string): Promise<Run> {
    const run = await this.get(principal, id)
    if (isTerminal(run.status)) throw new NotCancelable(id, run.status)
    const actor = { id: principal.id, kind: principal.kind }
    if (run.status === 'pending_approval' || run.status === 'approved') {
      let mine = false
      const updated = await this.d.store.update(id, (r) => {
        if (r.status !== 'pending_approval' && r.status !== 'approved') return undefined
        mine = true
        return { ...r, status: 'canceled', status_reason: `canceled by ${principal.id} before dispatch`, cancel_requested_by: principal.id, finished_at: new Date().toISOString() }
      })
      if (mine) {
        await this.d.audit.append({ type: 'run.canceled', actor, run_id: id, node: run.node_name, action: run.action, data: { before_dispatch: true } })
        return updated as Run
      }
      return this.cancel(principal, id)
    }
    const answer = await this.d.dispatcher.cancel(run, principal.id)
    await this.d.audit.append({ type: 'run.cancel_requested', actor, run_id: id, node: run.node_name, action: run.action, data: answer })
    // Recorded even when the run ended meanwhile: the request was made, and the runner's answer is audited.
    return (await this.d.store.update(id, (r) => r.cancel_requested_by ? undefined : { ...r, cancel_requested_by: principal.id })) ?? run
  }
}

function policyOutcome(d: PolicyDecision): Run['policy'] {
  switch (d.decision) {
    case 'allow': return { decision: 'allow', rule: d.rule }
    case 'deny': return { decision: 'deny', rule: d.rule, reason: d.reason }
    case 'require_approval': return { decision: 'require_approval', rule: d.rule, approver_groups: d.approver_groups, quorum: d.quorum, ttl: d.ttl }
  }
}
