/**
 * A low-risk read the control plane runs for itself (impact previews): no
 * policy (it is not an agent's request), but the same catalog, digest and
 * argument checks as any run, and audited like one.
 */
import { prepareInvocation } from '@writ/packs'
import { type AuditEventBody, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { FleetNode } from '../fleet/index.js'
import { ActionNotFound, ActionNotOnNode, BadArgs, DigestMismatch, NodeNotFound, PolicyDenied } from '../http/index.js'
import type { Run } from './run-record.js'
import type { RunServiceDeps, SystemRunRequest } from './run-service.js'
import { newRunId, randomHex } from './run-ids.js'
import { requestedEvent } from './run-request.js'


/** The record and request event of a read the control plane runs for itself, checked like any run's; throws a typed error otherwise. */
export function systemRun(d: Pick<RunServiceDeps, 'catalog' | 'fleet' | 'instanceId'>, req: SystemRunRequest): { run: Run, node: FleetNode, requested: AuditEventBody } {
  const hit = d.catalog.lookup(req.action)
  if (!hit.ok) throw new ActionNotFound(req.action)
  const { pack, action } = hit
  if (action.spec.risk !== 'low') throw new PolicyDenied(`${action.id} is ${action.spec.risk} risk; the control plane only runs low-risk reads for itself`)
  const node = d.fleet.find(req.node)
  if (!node) throw new NodeNotFound(req.node)
  const prepared = prepareInvocation(action.spec, req.args, pack.dir)
  if (!prepared.ok) throw new BadArgs(action.id, prepared.errors.map((e) => e.message).join('; '))
  const reported = node.packs.find((p) => p.id === pack.id)
  if (!reported) throw new ActionNotOnNode(node.name, pack.id)
  if (reported.digest !== pack.digest) throw new DigestMismatch(`node "${node.name}" reports pack "${pack.id}" with another digest than the catalog's`)
  const now = new Date().toISOString()
  const run: Run = {
    id: newRunId(), status: 'dispatched', status_reason: '', action: action.id, pack: pack.id, pack_digest: pack.digest,
    risk: action.spec.risk, node_id: node.id, node_name: node.name, args: prepared.args, reason: req.reason, requester: CONTROL_PLANE_ACTOR,
    ...(req.session_id !== undefined ? { session_id: req.session_id } : {}), options: {}, binding_salt: randomHex(32),
    policy: { decision: 'allow', rule: null }, created_at: now, updated_at: now, created_by_instance: d.instanceId,
  }
  return { run, node, requested: requestedEvent(run, d.catalog) }
}
