/**
 * The checks an accepted writ passes right before its action runs, the ones
 * that need the outside world: is the allocation it names on this node (the
 * Nomad API says), is the host daemon its binary talks to there. A failed
 * check is a refusal with nothing run; the writ's checks that need nothing
 * but the writ itself are in writ-verifier.ts.
 */
import { basename } from 'node:path'
import type { Invocation } from '@writ/packs'
import { nomadStatePath, observedState, stateChange, type ApprovedState, type Refusal } from '@writ/packs/protocol'
import { ApiStatusError, describeError } from './clients/api-errors.js'
import type { NomadTarget } from './clients/nomad-client.js'
import type { HttpClients } from './executors/execution-outcome.js'
import { MULTIPATHD_CLIENTS, probeMultipathd } from './multipathd-socket.js'
import { allocationOf } from './nomad-locality.js'

/** Largest allocation record read for the NodeID check (a real one is a few hundred KiB at most). */
const ALLOC_RECORD_CAP = 4 * 1024 * 1024

export interface PreflightContext {
  nodeId: string
  nomad: NomadTarget
  multipathdSockets: readonly string[]
  /** Bounds the Nomad lookup; the action's own timeout. */
  timeoutMs: number
  signal: AbortSignal
  /** The Nomad client to use instead of nomad-client.ts (tests). */
  callNomad?: HttpClients['nomad'] | undefined
  /** The Nomad state the approval was given on (the writ's `state`): re-read last, right before the action. */
  approvedState?: ApprovedState | undefined
}

export async function preflightRefusal(invocation: Invocation, ctx: PreflightContext): Promise<Refusal | undefined> {
  const allocId = allocationOf(invocation)
  if (allocId !== undefined) {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)])
    const notLocal = await allocLocalityRefusal(allocId, ctx.nodeId, ctx.nomad, signal, ctx.callNomad)
    if (notLocal) return notLocal
  }
  if (ctx.approvedState) {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)])
    return stateChangedRefusal(ctx.approvedState, ctx.nomad, signal, ctx.callNomad)
  }
  if (invocation.kind === 'exec' && MULTIPATHD_CLIENTS.has(basename(invocation.binary))) {
    const probe = await probeMultipathd(ctx.multipathdSockets)
    if (!probe.running) return { code: 'target_unavailable', message: `${probe.message}; ${basename(invocation.binary)} was not run` }
  }
  return undefined
}

/** Reads one Nomad object (capped) as JSON; throws what the client throws. */
async function readNomadJson(nomad: NomadTarget, path: string, signal: AbortSignal, injected: HttpClients['nomad'] | undefined): Promise<{ json: unknown, capped: boolean }> {
  const callNomad = injected ?? (await import('./clients/nomad-client.js')).callNomad
  const chunks: Buffer[] = []
  let size = 0
  await callNomad(nomad, { method: 'GET', path }, (c) => {
    size += c.length
    if (size <= ALLOC_RECORD_CAP * 4) chunks.push(c)
  }, signal)
  if (size > ALLOC_RECORD_CAP * 4) return { json: undefined, capped: true }
  try { return { json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown, capped: false } } catch { return { json: undefined, capped: false } }
}

/**
 * Reads the state the approval was given on again and refuses
 * `state_changed`, naming what moved, unless it is as approved — Nomad's
 * `-check-index`, for the allocation or node a person looked at. A state that
 * cannot be read is `target_unavailable`: an unchecked approval never acts.
 */
async function stateChangedRefusal(
  approved: ApprovedState, nomad: NomadTarget, signal: AbortSignal, injected: HttpClients['nomad'] | undefined,
): Promise<Refusal | undefined> {
  const what = approved.kind === 'allocation' ? `allocation ${approved.id}` : `the allocations on node ${approved.id}`
  let read: { json: unknown, capped: boolean }
  try {
    read = await readNomadJson(nomad, nomadStatePath(approved.kind, approved.id), signal, injected)
  } catch (e) {
    if (e instanceof ApiStatusError && e.status === 404) {
      return { code: 'state_changed', message: `${what} is gone from Nomad (${e.message}) since it was approved at ModifyIndex ${approved.modify_index}; nothing was called` }
    }
    const why = signal.aborted ? 'no answer in time, or the run was canceled' : describeError(e)
    return { code: 'target_unavailable', message: `cannot re-read ${what} to check the approved state: ${why}; nothing was called` }
  }
  const observed = observedState(approved.kind, read.json)
  if (!observed.ok) return { code: 'target_unavailable', message: `cannot check the approved state of ${what}: ${read.capped ? 'Nomad\'s answer is over the cap' : observed.message}; nothing was called` }
  const moved = stateChange(approved, observed.state)
  if (moved) return { code: 'state_changed', message: `${moved} since it was approved; the approval no longer holds, nothing was called — ask again to approve what is there now` }
  return undefined
}

/**
 * Reads the allocation from Nomad and refuses unless it runs on this node.
 * Only the read is made; whatever the action would call comes after, and only
 * when this returns undefined.
 */
async function allocLocalityRefusal(
  allocId: string, ownNodeId: string, nomad: NomadTarget, signal: AbortSignal, injected: HttpClients['nomad'] | undefined,
): Promise<Refusal | undefined> {
  // Loaded on first use, like the http executor: a runner may never call an API.
  const callNomad = injected ?? (await import('./clients/nomad-client.js')).callNomad
  const chunks: Buffer[] = []
  let size = 0
  try {
    await callNomad(nomad, { method: 'GET', path: `/v1/allocation/${encodeURIComponent(allocId)}` }, (c) => {
      size += c.length
      if (size <= ALLOC_RECORD_CAP) chunks.push(c)
    }, signal)
  } catch (e) {
    if (e instanceof ApiStatusError && e.status === 404) {
      return { code: 'not_local', message: `allocation ${allocId} is not known to Nomad (${e.message}), so it is not on this node; nothing was called` }
    }
    const why = signal.aborted ? 'no answer in time, or the run was canceled' : describeError(e)
    return { code: 'target_unavailable', message: `cannot check which node allocation ${allocId} runs on: ${why}; nothing was called` }
  }
  let nodeId: unknown
  try { nodeId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { NodeID?: unknown }).NodeID } catch { nodeId = undefined }
  if (size > ALLOC_RECORD_CAP || typeof nodeId !== 'string' || nodeId === '') {
    return { code: 'target_unavailable', message: `cannot check which node allocation ${allocId} runs on: Nomad's answer has no NodeID; nothing was called` }
  }
  if (nodeId !== ownNodeId) {
    return { code: 'not_local', message: `allocation ${allocId} runs on node ${nodeId}, not on this runner's node (${ownNodeId}); a runner acts only on allocations on its own node` }
  }
  return undefined
}
