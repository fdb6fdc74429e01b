/**
 * The impact preview on a run page: what the read-only preview runs found
 * (the allocation a stop would kill, the allocations a drain would move), as
 * of when they ran, and the names they learnt for the run's argument values.
 */
import { isTerminal, type Run, type RunStore } from '../runs/index.js'

export interface PreviewItem { title: string, run_id: string, note?: string, facts: Array<[string, string]>, columns?: string[], rows?: string[][], as_of?: string }
export interface PreviewView { items: PreviewItem[], unavailable?: string, labels: Record<string, string> }

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
      ['Allocation', text(alloc.Name)], ['Job', text(alloc.JobID)], ['Task group', text(alloc.TaskGroup)], ['Client status', text(alloc.ClientStatus)],
      ['Desired status', text(alloc.DesiredStatus)], ['Tasks', tasks.join('; ') || '—'],
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
    facts: [['Allocations running on the node', String(live.length)]],
    columns: ['Allocation', 'Job', 'Task group', 'Client status'],
    rows: live.map((a) => [text(a.ID).slice(0, 8), text(a.JobID), text(a.TaskGroup), text(a.ClientStatus)]),
  }
}

/** The preview of `run`, read from its preview runs; undefined when it has none. */
export async function previewView(run: Run, store: RunStore): Promise<PreviewView | undefined> {
  const p = run.approval?.preview
  return p ? previewOf(p, run.args, store) : undefined
}

/**
 * What preview runs found, for an action with these arguments (a run's, or
 * one target's of a plan), as of when they ran.
 */
export async function previewOf(p: { runs: Array<{ action: string, run_id: string }>, unavailable?: string | undefined }, args: Run['args'], store: RunStore): Promise<PreviewView> {
  const items: PreviewItem[] = []
  const labels: Record<string, string> = {}
  for (const ref of p.runs) {
    const r = (await store.get(ref.run_id))?.run
    const title = ref.action === 'nomad.alloc_status' ? 'The allocation it stops' : ref.action === 'nomad.node_allocs' ? 'Allocations on the node' : ref.action
    if (!r) { items.push({ title, run_id: ref.run_id, note: 'preview unavailable: its run record is gone', facts: [] }); continue }
    if (!isTerminal(r.status)) { items.push({ title, run_id: r.id, note: `preview still running (${r.status}); reload in a moment`, facts: [] }); continue }
    if (r.status !== 'succeeded') { items.push({ title, run_id: r.id, note: `preview unavailable: ${r.status_reason}`, facts: [] }); continue }
    const parsed = parsedOf(r)
    const asOf = r.finished_at ?? r.updated_at
    if (ref.action === 'nomad.alloc_status' && parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const alloc = parsed as Record<string, any>
      // The allocation's name (`job.group[n]`) is what a person knows it by: the summary shows it beside the id.
      if (typeof alloc.Name === 'string' && typeof args.alloc_id === 'string' && alloc.ID === args.alloc_id) labels.alloc_id = alloc.Name
      items.push({ title, run_id: r.id, as_of: asOf, ...allocFacts(alloc) })
    } else if (ref.action === 'nomad.node_allocs' && Array.isArray(parsed)) items.push({ title, run_id: r.id, as_of: asOf, ...nodeAllocFacts(parsed as Array<Record<string, any>>) })
    else items.push({ title, run_id: r.id, note: 'preview returned output it could not read', facts: [] })
  }
  return { items, labels, ...(p.unavailable ? { unavailable: p.unavailable } : {}) }
}
