/**
 * A plan as a caller reads it: status, counts per target status, every
 * target with its run id, and the results grouped by identical output (or
 * parsed value) — "412 nodes: …; 3 nodes: …" — with the node lists, so one
 * answer stands for a thousand runs. And each target as the ordinary run it
 * also is (`GET /v1/runs/:id`), tied to its plan.
 */
import { planRunId, type RunResult } from '@writ/packs/protocol'
import { applyResult, redactArgs, type Run, type RunStatus } from '../runs/index.js'
import type { PlanProgress, ResultGroup } from './plan-progress.js'
import type { Plan, PlanState } from './plan-schemas.js'

export interface PlanGroupView { count: number, status: RunStatus, exit_code: number | null, nodes: string[], more_nodes?: number, output: string }

export interface PlanView {
  plan_id: string
  url: string
  status: PlanState['status']
  status_reason: string
  action: string
  reason: string
  expected?: string
  requester: Plan['requester']
  session_id?: string
  selector?: string
  nodes?: string[]
  rollout: Plan['rollout']
  root: string
  list_digest: string
  created_at: string
  finished_at?: string
  counts: Partial<Record<RunStatus, number>> & { targets: number }
  /** One line a group, largest first. */
  summary: string
  groups: PlanGroupView[]
  targets?: Array<{ node: string, run_id: string, status: RunStatus }>
  excluded: Plan['excluded']
  approval?: { url: string, expires_at: string, quorum: number, approvals_so_far: number, approver_groups: string[], binding: string, passkey_required: boolean, denial?: { by: string, reason: string } }
  halt?: PlanState['halt']
  /** The standing grant that covered the gated targets (one use each) in place of a decision. */
  grant?: { id: string, uses: number, uses_left: number | null, expires_at: string }
}

/** Where a target stands, from the plan's state and progress. */
export function targetStatus(state: PlanState, progress: PlanProgress, position: number): RunStatus {
  const r = progress.results.get(position)
  if (r) return r.status
  if (progress.dispatched.has(position)) return 'running'
  switch (state.status) {
    case 'pending_approval': return 'pending_approval'
    case 'denied': return 'denied'
    case 'expired': return 'expired'
    case 'running': return state.halt ? 'canceled' : 'approved'
    default: return 'canceled'
  }
}

function firstLine(text: string, max = 160): string {
  const line = text.trim().split('\n')[0] ?? ''
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

export interface ViewOptions { url: string, /** Node names listed per group at most. */ nodesPerGroup: number, withTargets: boolean, sampleChars: number }

export function presentPlan(plan: Plan, state: PlanState, progress: PlanProgress, o: ViewOptions): PlanView {
  const counts: PlanView['counts'] = { targets: plan.targets.length }
  const statuses = plan.targets.map((_, p) => targetStatus(state, progress, p))
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1
  const groups = [...progress.groups.values()].sort((a, b) => b.positions.length - a.positions.length).map((g) => groupView(plan, g, o))
  const waiting = plan.targets.length - progress.results.size
  const lines = groups.map((g) => `${g.count} node${g.count === 1 ? '' : 's'}: ${g.status}${g.exit_code !== null && g.status !== 'succeeded' ? ` (exit ${g.exit_code})` : ''}${g.output ? ` — ${firstLine(g.output)}` : ''}`)
  if (waiting > 0) lines.push(`${waiting} node${waiting === 1 ? '' : 's'}: no outcome yet (${state.status === 'pending_approval' ? 'waiting for approval' : state.status})`)
  const a = plan.approval
  return {
    plan_id: plan.id, url: o.url, status: state.status, status_reason: state.status_reason, action: plan.action, reason: plan.reason,
    ...(plan.expected ? { expected: plan.expected } : {}), requester: plan.requester, ...(plan.session_id ? { session_id: plan.session_id } : {}),
    ...(plan.selector !== undefined ? { selector: plan.selector } : {}), ...(plan.nodes ? { nodes: plan.nodes } : {}),
    rollout: plan.rollout, root: plan.root, list_digest: plan.list_digest, created_at: plan.created_at,
    ...(state.finished_at ? { finished_at: state.finished_at } : {}),
    counts, summary: lines.join('; '), groups,
    ...(o.withTargets ? { targets: plan.targets.map((t, p) => ({ node: t.node_name, run_id: planRunId(plan.id, p), status: statuses[p] as RunStatus })) } : {}),
    excluded: plan.excluded,
    ...(a ? {
      approval: {
        url: o.url, expires_at: a.expires_at, quorum: a.quorum, approvals_so_far: state.approvals.length, approver_groups: a.approver_groups, binding: a.binding,
        passkey_required: a.passkey_required ?? false, ...(state.denial ? { denial: { by: state.denial.by, reason: state.denial.reason } } : {}),
      },
    } : {}),
    ...(state.halt ? { halt: state.halt } : {}),
    ...(plan.grant ? { grant: { id: plan.grant.id, uses: plan.grant.uses, uses_left: plan.grant.uses_left, expires_at: plan.grant.expires_at } } : {}),
  }
}

function groupView(plan: Plan, g: ResultGroup, o: ViewOptions): PlanGroupView {
  // In rollout order, so a list reads the same on every look.
  const names = [...g.positions].sort((x, y) => x - y).slice(0, o.nodesPerGroup).map((p) => plan.targets[p]?.node_name ?? String(p))
  const sample = g.sample ?? ''
  return {
    count: g.positions.length, status: g.status, exit_code: g.exit_code ?? null, nodes: names,
    ...(g.positions.length > names.length ? { more_nodes: g.positions.length - names.length } : {}),
    output: sample.length > o.sampleChars ? `${sample.slice(0, o.sampleChars)}…` : sample,
  }
}

/** Target `position` as an ordinary run (with its full result, when given, from WRIT_RESULTS). */
export function targetRun(plan: Plan, state: PlanState, progress: PlanProgress, position: number, sensitive: ReadonlySet<string>, stored?: RunResult): Run & { plan: { id: string, position: number } } {
  const t = plan.targets[position] as Plan['targets'][number]
  const status = targetStatus(state, progress, position)
  const r = progress.results.get(position)
  const dispatchedAt = progress.dispatched.get(position)
  const base: Run = {
    id: planRunId(plan.id, position), status, status_reason: r?.reason ?? `target ${position + 1} of plan ${plan.id}: ${state.status_reason}`,
    action: plan.action, pack: plan.pack, pack_digest: plan.pack_digest, risk: plan.risk, node_id: t.node_id, node_name: t.node_name,
    args: redactArgs(t.args, sensitive), reason: plan.reason, requester: plan.requester, ...(plan.session_id ? { session_id: plan.session_id } : {}),
    ...(plan.expected ? { expected: plan.expected } : {}), options: plan.options, policy: t.policy,
    created_at: plan.created_at, updated_at: state.updated_at, created_by_instance: plan.created_by_instance, request_hash: plan.request_hash,
    ...(dispatchedAt ? { dispatched_at: new Date(dispatchedAt).toISOString() } : {}),
    ...(r ? { finished_at: r.at } : {}),
  }
  const run = stored && r && stored.run_id === base.id ? { ...applyResult(base, stored), status: r.status } : base
  return { ...run, plan: { id: plan.id, position } }
}
