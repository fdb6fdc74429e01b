/**
 * Sending a recorded run's writ: the fields a dispatched run is recorded
 * with, and the runner's answer — accepted, refused, no runner listening, no
 * answer in time — recorded on the run and the audit chain.
 */
import { PackCatalog } from '@writ/packs'
import type { ApprovalRef, SignedGrant } from '@writ/packs/protocol'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { Metrics } from '../metrics.js'
import type { Dispatcher } from './dispatcher.js'
import { isTerminal, type Run } from './run-record.js'
import type { RunStore } from './run-store.js'

export interface SendingDeps { catalog: PackCatalog, dispatcher: Dispatcher, store: RunStore, audit: AuditChain, metrics: Metrics, lostGraceMs: number }


/** The fields of a run as it is recorded dispatched: its reason, when, and the deadline after which it is lost. */
export function dispatchFields(run: Run, reason: string, d: Pick<SendingDeps, 'catalog' | 'lostGraceMs'>): Pick<Run, 'status' | 'status_reason' | 'dispatched_at' | 'deadline_at' | 'updated_at'> {
  const action = d.catalog.lookup(run.action)
  const timeoutMs = action.ok ? PackCatalog.limits(action.action, run.options).timeoutMs : 60_000
  const now = Date.now()
  const at = new Date(now).toISOString()
  return { status: 'dispatched', status_reason: reason, dispatched_at: at, deadline_at: new Date(now + timeoutMs + d.lostGraceMs).toISOString(), updated_at: at }
}

/** Signs and sends the writ of a run already recorded as dispatched, and records the runner's answer. */
export async function sendWrit(d: SendingDeps, run: Run, approvals: ApprovalRef[], grant?: SignedGrant): Promise<Run> {
  const outcome = await d.dispatcher.dispatch(run, approvals, grant)
  const base = { actor: CONTROL_PLANE_ACTOR, run_id: run.id, node: run.node_name, action: run.action }
  let updated: Run | undefined
  switch (outcome.kind) {
    case 'accepted':
      ;[updated] = await Promise.all([
        d.store.update(run.id, (r) => r.status === 'dispatched' ? { ...r, status: 'running', status_reason: `accepted by ${r.node_name}` } : undefined),
        d.audit.append({
          ...base, type: 'run.dispatched',
          data: { accepted: true, key_id: d.dispatcher.keyId, deadline_at: run.deadline_at, ...(approvals.length > 0 ? { approvals } : {}), ...(grant ? { grant: grant.statement.id } : {}) },
        }),
      ])
      break
    case 'refused':
      updated = await d.store.update(run.id, (r) => isTerminal(r.status) ? undefined : { ...r, status: 'refused_by_runner', refusal: outcome.refusal, status_reason: `runner refused (${outcome.refusal.code}): ${outcome.refusal.message}`, finished_at: new Date().toISOString() })
      await d.audit.append({ ...base, type: 'run.refused', data: { refusal: outcome.refusal } })
      break
    case 'node_offline':
      updated = await d.store.update(run.id, (r) => isTerminal(r.status) ? undefined : { ...r, status: 'node_offline', status_reason: outcome.message, finished_at: new Date().toISOString() })
      await d.audit.append({ ...base, type: 'run.node_offline', data: { message: outcome.message } })
      break
    case 'no_ack':
      updated = await d.store.update(run.id, (r) => r.status === 'dispatched' ? { ...r, status_reason: `${outcome.message}; waiting for a result until ${r.deadline_at}` } : undefined)
      await d.audit.append({ ...base, type: 'run.dispatched', data: { accepted: null, message: outcome.message, deadline_at: run.deadline_at } })
      break
  }
  d.metrics.dispatches.inc({ outcome: outcome.kind })
  return updated ?? run
}
