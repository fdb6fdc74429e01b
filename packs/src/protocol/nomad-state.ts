/**
 * The Nomad state an approval is given on. Where an action's impact preview
 * reads what the action will change (`nomad.alloc_stop` → the allocation;
 * `nomad.node_drain` / `nomad.node_eligibility` → the node's allocations),
 * the control plane binds that state's `ModifyIndex` into the approval and
 * the writ carries it; right before acting the runner reads the same thing
 * again and refuses `state_changed` if it moved — `nomad job run
 * -check-index`, for the object a person looked at. One function computes the
 * state from Nomad's answer for both daemons, so they can never disagree on
 * what "the same" means.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'

const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)

/** What a writ carries (and the approval binding covers): the state the approvers saw. */
export const ApprovedStateSchema = z.object({
  /** `allocation`: one allocation (GET /v1/allocation/:id); `node_allocations`: what runs on a node (GET /v1/node/:id/allocations). */
  kind: z.enum(['allocation', 'node_allocations']),
  /** The allocation or node id. */
  id: Uuid,
  /** The allocation's ModifyIndex, or the highest one among the node's allocations. */
  modify_index: z.number().int().nonnegative(),
  /** SHA-256 over every (ID, ModifyIndex) read, sorted: catches an allocation gone or added without the highest index moving. */
  fingerprint: Sha256Hex,
  /** SHA-256 of the impact preview's output the approvers were shown. */
  preview_digest: Sha256Hex,
}).strict()
export type ApprovedState = z.infer<typeof ApprovedStateSchema>
export type NomadStateKind = ApprovedState['kind']

/** Which state an action changes, and where its id is in the arguments; undefined for actions that bind none. */
export const STATEFUL_ACTIONS: Readonly<Record<string, { kind: NomadStateKind, arg: string }>> = {
  'nomad.alloc_stop': { kind: 'allocation', arg: 'alloc_id' },
  'nomad.node_drain': { kind: 'node_allocations', arg: 'node_id' },
  'nomad.node_eligibility': { kind: 'node_allocations', arg: 'node_id' },
}

/** The Nomad API path that reads a state of `kind`. */
export function nomadStatePath(kind: NomadStateKind, id: string): string {
  return kind === 'allocation' ? `/v1/allocation/${encodeURIComponent(id)}` : `/v1/node/${encodeURIComponent(id)}/allocations`
}

export interface ObservedState { modify_index: number, fingerprint: string, /** One line per allocation read: `id:index`. */ entries: Array<{ id: string, index: number }> }

type Observed = { ok: true, state: ObservedState } | { ok: false, message: string }

/** The state in Nomad's answer (parsed JSON) to `nomadStatePath(kind, …)`. */
export function observedState(kind: NomadStateKind, answer: unknown): Observed {
  const list = kind === 'allocation' ? [answer] : answer
  if (!Array.isArray(list)) return { ok: false, message: `Nomad's answer is not ${kind === 'allocation' ? 'an allocation' : 'a list of allocations'}` }
  const entries: Array<{ id: string, index: number }> = []
  for (const a of list) {
    const id = (a as { ID?: unknown } | null)?.ID
    const index = (a as { ModifyIndex?: unknown } | null)?.ModifyIndex
    if (typeof id !== 'string' || typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
      return { ok: false, message: 'an allocation in Nomad\'s answer has no ID or ModifyIndex' }
    }
    entries.push({ id, index })
  }
  entries.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
  const fingerprint = createHash('sha256').update(entries.map((e) => `${e.id}:${e.index}`).join('\n')).digest('hex')
  return { ok: true, state: { modify_index: entries.reduce((m, e) => Math.max(m, e.index), 0), fingerprint, entries } }
}

/**
 * What moved between the approved state and the current one, in words an
 * operator can act on ("allocation a8198d79… ModifyIndex 57 → 58"), or
 * undefined when nothing did.
 */
export function stateChange(approved: ApprovedState, now: ObservedState): string | undefined {
  if (approved.modify_index === now.modify_index && approved.fingerprint === now.fingerprint) return undefined
  const short = `${approved.id.slice(0, 8)}…`
  if (approved.kind === 'allocation') return `allocation ${short} ModifyIndex ${approved.modify_index} → ${now.modify_index}`
  const index = approved.modify_index === now.modify_index ? `highest ModifyIndex still ${now.modify_index}` : `highest ModifyIndex ${approved.modify_index} → ${now.modify_index}`
  return `allocations on node ${short} changed (${now.entries.length} now, ${index})`
}
