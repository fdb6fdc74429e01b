/**
 * A runner acts on Nomad only for its own node. Nomad's ACLs cannot say that
 * (node write covers every node; alloc-lifecycle every allocation in a
 * namespace), so the runner says it: from the path a `kind: http` action
 * would call, never from what the pack claims about itself.
 *
 * - `/v1/node/<id>[/…]`: only this runner's own node id.
 * - `/v1/allocation/<id>[/…]`, `/v1/client/allocation/<id>/…`,
 *   `/v1/client/fs/<op>/<id>`: only an allocation whose NodeID, read from the
 *   Nomad API before anything else is called, is this runner's node. An
 *   allocation never moves between nodes, so the answer cannot go stale.
 * - anything else (`/v1/nodes`, `/v1/jobs`, …) is not about this node: refused.
 *
 * Pure: the Nomad lookup for allocations is in run-preflight.ts, so a runner
 * that never calls an API never loads the HTTP client.
 */
import type { Invocation } from '@writ/packs'
import type { Refusal } from '@writ/packs/protocol'

export type NomadScope =
  | { kind: 'node', nodeId: string }
  | { kind: 'alloc', allocId: string }
  | { kind: 'unscoped', why: string }

/**
 * The path segments, percent-decoded. Undefined when a segment could make a
 * server see a different path than the one checked here (`.`/`..`, an
 * encoded `/`, an empty segment, bad escapes).
 */
function segmentsOf(path: string): string[] | undefined {
  const bare = path.split(/[?#]/, 1)[0] ?? ''
  if (!bare.startsWith('/')) return undefined
  const out: string[] = []
  for (const raw of bare.slice(1).split('/')) {
    let seg: string
    try { seg = decodeURIComponent(raw) } catch { return undefined }
    if (seg === '' || seg === '.' || seg === '..' || seg.includes('/') || seg.includes('\\')) return undefined
    out.push(seg)
  }
  return out
}

/** What a Nomad API path is about. */
export function nomadScopeOf(path: string): NomadScope {
  const seg = segmentsOf(path)
  if (!seg) return { kind: 'unscoped', why: `path ${path} is not a plain /v1/… path` }
  const [v1, a, b, c, d] = seg
  if (v1 !== 'v1') return { kind: 'unscoped', why: `path ${path} is not under /v1` }
  if (a === 'node' && b !== undefined) return { kind: 'node', nodeId: b }
  if (a === 'allocation' && b !== undefined) return { kind: 'alloc', allocId: b }
  if (a === 'client' && b === 'allocation' && c !== undefined && seg.length > 4) return { kind: 'alloc', allocId: c }
  if (a === 'client' && b === 'fs' && c !== undefined && d !== undefined && seg.length === 5) return { kind: 'alloc', allocId: d }
  return { kind: 'unscoped', why: `${path} is not about one node or one allocation` }
}

/**
 * The refusal for a Nomad call that is about another node or about no node at
 * all; undefined for a call about this node or about an allocation (whose
 * node is checked by `allocLocalityRefusal` before the call).
 */
export function nodeLocalityRefusal(invocation: Invocation, ownNodeId: string): Refusal | undefined {
  if (invocation.kind !== 'http' || invocation.target !== 'nomad') return undefined
  const scope = nomadScopeOf(invocation.path)
  switch (scope.kind) {
    case 'node':
      return scope.nodeId === ownNodeId
        ? undefined
        : { code: 'not_local', message: `node ${scope.nodeId} is not this runner's node (${ownNodeId}); a runner acts on Nomad only for its own node` }
    case 'alloc':
      return undefined
    case 'unscoped':
      return { code: 'not_local', message: `${invocation.method} ${scope.why}; a runner acts on Nomad only for its own node and the allocations on it` }
  }
}

/** The allocation a Nomad call is about, when it is about one. */
export function allocationOf(invocation: Invocation): string | undefined {
  if (invocation.kind !== 'http' || invocation.target !== 'nomad') return undefined
  const scope = nomadScopeOf(invocation.path)
  return scope.kind === 'alloc' ? scope.allocId : undefined
}
