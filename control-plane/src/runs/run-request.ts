/**
 * A run request checked against what the control plane knows before policy
 * sees it — the action in the authoritative catalog (and in the caller's
 * scope), the node in the fleet, the arguments against the contract, the
 * node's pack digest against the catalog's — and the `run.requested` event
 * that puts it on the audit chain. Every refusal is a typed error.
 */
import { prepareInvocation, type LoadedAction, type LoadedPack, type PackCatalog } from '@writ/packs'
import type { AuditEventBody } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import { ActionNotFound, ActionNotOnNode, BadArgs, DigestMismatch, NodeNotFound, withDetails } from '../http/index.js'
import { policyNodeOf, restScoped, type PolicyScope } from '../policy/index.js'
import type { Run } from './run-record.js'
import type { RunRequest } from './run-schemas.js'
import { redactArgs, sensitiveArgNames } from './sensitive-args.js'

export interface CheckedRequest { pack: LoadedPack, action: LoadedAction, node: FleetNode, args: Run['args'] }

/** The request's action, node and validated arguments; throws the typed error of the first check that fails. */
export function checkedRequest(
  d: { catalog: PackCatalog, fleet: FleetView, scope: PolicyScope | undefined }, principal: Principal, req: Pick<RunRequest, 'action' | 'node' | 'args'>,
): CheckedRequest {
  const hit = d.catalog.lookup(req.action)
  const scoped = d.scope && restScoped(principal) ? d.scope : undefined
  // An action or node outside the caller's scope is as unknown to it as one that does not exist.
  if (!hit.ok || (scoped && !scoped.action(principal, { id: hit.action.id, risk: hit.action.spec.risk }))) throw new ActionNotFound(req.action)
  const { pack, action } = hit
  const node = d.fleet.find(req.node)
  if (!node || (scoped && !scoped.node(principal, policyNodeOf(node)))) throw new NodeNotFound(req.node)
  const prepared = prepareInvocation(action.spec, req.args, pack.dir)
  if (!prepared.ok) throw withDetails(new BadArgs(action.id, prepared.errors.map((e) => e.message).join('; ')), { args: prepared.errors })
  const reported = node.packs.find((p) => p.id === pack.id)
  if (!reported) throw new ActionNotOnNode(node.name, pack.id)
  if (reported.digest !== pack.digest) {
    throw withDetails(
      new DigestMismatch(`node "${node.name}" reports pack "${pack.id}" with digest ${reported.digest.slice(0, 12)}…, the catalog has ${pack.digest.slice(0, 12)}…: it gets no writ until they match`),
      { node_digest: reported.digest, catalog_digest: pack.digest },
    )
  }
  return { pack, action, node, args: prepared.args }
}

/** The `run.requested` event of a run record: sensitive arguments redacted, optional fields only when set. */
export function requestedEvent(run: Run, catalog: PackCatalog): AuditEventBody {
  return {
    type: 'run.requested', actor: run.requester, run_id: run.id, node: run.node_name, action: run.action,
    data: {
      args: redactArgs(run.args, sensitiveArgNames(catalog, run.action)),
      reason: run.reason, risk: run.risk, pack_digest: run.pack_digest, policy: run.policy,
      ...(Object.keys(run.options).length > 0 ? { options: run.options } : {}),
      ...(run.session_id ? { session_id: run.session_id } : {}),
      ...(run.expected ? { expected: run.expected } : {}),
      ...(run.evidence ? { evidence: run.evidence } : {}),
    },
  }
}
