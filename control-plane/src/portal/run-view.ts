/**
 * What the run page shows, worked out from the run record, the catalog, its
 * impact-preview runs and its evidence trail. Pure reads: building a page
 * never changes anything.
 */
import type { PackCatalog } from '@writ/packs'
import { ApprovalService } from '../approvals/index.js'
import type { Principal } from '../auth/index.js'
import { isTerminal, presentRun, type Run, type RunStore } from '../runs/index.js'

const OUTPUT_HEAD = 4000
const STATUS_LABEL: Record<string, string> = {
  pending_approval: 'Waiting for approval', approved: 'Approved', dispatched: 'Dispatched', running: 'Running', succeeded: 'Succeeded',
  failed: 'Failed', denied: 'Denied', expired: 'Expired', node_offline: 'Node offline', refused_by_runner: 'Refused by the runner',
  timed_out: 'Timed out', canceled: 'Canceled', lost: 'Lost',
}

export interface PreviewItem { title: string, run_id: string, note?: string, facts: Array<[string, string]>, columns?: string[], rows?: string[][] }

export function timeLeft(untilIso: string, now = Date.now()): string {
  const ms = Date.parse(untilIso) - now
  if (ms <= 0) return '0 min'
  const min = Math.floor(ms / 60_000)
  return min >= 1 ? `${min} min` : `${Math.ceil(ms / 1000)} s`
}

function text(v: unknown): string { return v === undefined || v === null ? '—' : typeof v === 'string' ? v : JSON.stringify(v) }

function parsedOf(run: Run): unknown {
  if (run.result?.parsed !== undefined) return run.result.parsed
  try { return run.result ? JSON.parse(run.result.stdout) : undefined } catch { return undefined }
}

/** The facts an approver needs from a Nomad allocation (`nomad.alloc_status`): job, group, status, and its CSI volumes. */
function allocFacts(alloc: Record<string, any>): Pick<PreviewItem, 'facts' | 'columns' | 'rows'> {
  const group = (alloc.Job?.TaskGroups as Array<Record<string, any>> | undefined)?.find((g) => g.Name === alloc.TaskGroup)
  const volumes = Object.entries((group?.Volumes ?? {}) as Record<string, Record<string, any>>)
  const tasks = Object.entries((alloc.TaskStates ?? {}) as Record<string, Record<string, any>>).map(([name, s]) => `${name}: ${text(s.State)}${s.Failed ? ' (failed)' : ''}, ${text(s.Restarts)} restarts`)
  return {
    facts: [
      ['Job', text(alloc.JobID)], ['Task group', text(alloc.TaskGroup)], ['Client status', text(alloc.ClientStatus)],
      ['Desired status', text(alloc.DesiredStatus)], ['Node', text(alloc.NodeID)], ['Tasks', tasks.join('; ') || '—'],
      ['CSI volumes', volumes.filter(([, v]) => v.Type === 'csi').map(([, v]) => text(v.Source)).join(', ') || 'none'],
    ],
    columns: ['Volume', 'Type', 'Source', 'Read-only', 'Access mode'],
    rows: volumes.map(([name, v]) => [name, text(v.Type), text(v.Source), v.ReadOnly ? 'yes' : 'no', text(v.AccessMode)]),
  }
}

/** The allocations a drain would move (`nomad.node_allocs`), those not already finished. */
function nodeAllocFacts(allocs: Array<Record<string, any>>): Pick<PreviewItem, 'facts' | 'columns' | 'rows'> {
  const live = allocs.filter((a) => a.ClientStatus === 'running' || a.ClientStatus === 'pending')
  return {
    facts: [['Allocations that would move', String(live.length)]],
    columns: ['Allocation', 'Job', 'Task group', 'Client status'],
    rows: live.map((a) => [text(a.ID).slice(0, 8), text(a.JobID), text(a.TaskGroup), text(a.ClientStatus)]),
  }
}

async function previewItems(run: Run, store: RunStore): Promise<{ items: PreviewItem[], unavailable?: string } | undefined> {
  const p = run.approval?.preview
  if (!p) return undefined
  const items: PreviewItem[] = []
  for (const ref of p.runs) {
    const r = (await store.get(ref.run_id))?.run
    const title = ref.action === 'nomad.alloc_status' ? 'The allocation it stops' : ref.action === 'nomad.node_allocs' ? 'Allocations on the node' : ref.action
    if (!r) { items.push({ title, run_id: ref.run_id, note: 'preview unavailable: its run record is gone', facts: [] }); continue }
    if (!isTerminal(r.status)) { items.push({ title, run_id: r.id, note: `preview still running (${r.status}); reload in a moment`, facts: [] }); continue }
    if (r.status !== 'succeeded') { items.push({ title, run_id: r.id, note: `preview unavailable: ${r.status_reason}`, facts: [] }); continue }
    const parsed = parsedOf(r)
    if (ref.action === 'nomad.alloc_status' && parsed && typeof parsed === 'object' && !Array.isArray(parsed)) items.push({ title, run_id: r.id, ...allocFacts(parsed as Record<string, any>) })
    else if (ref.action === 'nomad.node_allocs' && Array.isArray(parsed)) items.push({ title, run_id: r.id, ...nodeAllocFacts(parsed as Array<Record<string, any>>) })
    else items.push({ title, run_id: r.id, note: 'preview returned output it could not read', facts: [] })
  }
  return { items, ...(p.unavailable ? { unavailable: p.unavailable } : {}) }
}

export interface EvidenceItem { id: string, action: string, node: string, status: string, reason: string, at: string, cited: boolean, output: string, truncated: string }

/** The requester's earlier runs in the same session and every run it cites, cited first. */
async function evidenceTrail(run: Run, store: RunStore, catalog: PackCatalog): Promise<EvidenceItem[]> {
  const cited = new Set(run.evidence ?? [])
  const ids = [...cited]
  if (run.session_id) {
    for (const r of store.list({ session_id: run.session_id, requester: run.requester.id }, 50)) if (r.id !== run.id && !cited.has(r.id)) ids.push(r.id)
  }
  const out: EvidenceItem[] = []
  for (const id of ids) {
    const hit = await store.get(id)
    if (!hit) continue
    const r = presentRun(hit.run, catalog)
    const stdout = r.result?.stdout ?? ''
    out.push({
      id: r.id, action: r.action, node: r.node_name, status: r.status, reason: r.reason, at: r.finished_at ?? r.created_at, cited: cited.has(r.id),
      output: stdout.length > OUTPUT_HEAD ? stdout.slice(0, OUTPUT_HEAD) : stdout,
      truncated: stdout.length > OUTPUT_HEAD ? `first ${OUTPUT_HEAD} of ${stdout.length} characters shown; the whole output is on the run's page` : r.result?.stdout_truncated ? 'the runner capped this output at the action\'s limit' : '',
    })
  }
  return out
}

/** Whether `p` can decide `run` now, and if not, why (for the page to say). */
export function decisionFor(p: Principal, run: Run): { allowed: boolean, whyNot: string } | undefined {
  const a = run.approval
  if (!a || run.status !== 'pending_approval') return undefined
  if (Date.parse(a.expires_at) <= Date.now()) return { allowed: false, whyNot: 'The decision window has closed; the run expires.' }
  if (p.id === run.requester.id || p.person === (run.requester_person ?? run.requester.id)) return { allowed: false, whyNot: 'You requested this run; somebody else has to decide it.' }
  if (!ApprovalService.isApprover(p, a.approver_groups)) return { allowed: false, whyNot: `Approvers of this run come from ${a.approver_groups.join(', ')}; you are not in those groups.` }
  if (a.approvals.some((x) => x.by === p.id || x.person === p.person)) return { allowed: false, whyNot: `You approved it already; it needs ${a.quorum - a.approvals.length} more approval(s) from other people.` }
  return { allowed: true, whyNot: '' }
}

export async function runView(run: Run, viewer: Principal, store: RunStore, catalog: PackCatalog) {
  const shown = presentRun(run, catalog)
  const hit = catalog.lookup(run.action)
  const spec = hit.ok ? hit.action.spec : undefined
  const a = run.approval
  return {
    run: {
      ...shown, statusLabel: STATUS_LABEL[run.status] ?? run.status, requester: `${run.requester.id} (${run.requester.kind})`,
      args: Object.entries(shown.args).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
    },
    action: { title: spec?.title ?? run.action, description: spec?.description ?? '', side_effects: spec?.side_effects ?? [], risk: run.risk },
    // The options narrow the declared limits and are part of what the binding covers, so the approver sees both.
    options: {
      given: Object.entries(run.options).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]),
      declared: spec ? `timeout ${spec.execution.timeout}, stdout up to ${spec.output.max_stdout_bytes} bytes` : '',
    },
    approval: a ? {
      ...a, groups: a.approver_groups.join(', '), open: run.status === 'pending_approval' && Date.parse(a.expires_at) > Date.now(), timeLeft: timeLeft(a.expires_at),
    } : undefined,
    preview: await previewItems(run, store),
    evidence: await evidenceTrail(run, store, catalog),
    decision: decisionFor(viewer, run),
  }
}
