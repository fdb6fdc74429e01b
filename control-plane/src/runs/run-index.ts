/**
 * The light, in-memory index of runs one control-plane instance keeps from
 * its watch of the bucket: summaries (no output, no arguments, never the
 * binding salt) for listings, and — for runs that have not finished — the
 * moment a sweep must look at each (approval window, dispatch grace,
 * deadline) and a count per requester, so sweeps and caps never scan the
 * whole index. Finished runs are dropped, oldest finished first, once it
 * holds more than its limit; unfinished runs always stay.
 */
import { DueQueue } from './due-queue.js'
import { isTerminal, type Run, type RunStatus } from './run-record.js'

export type RunSummary = Omit<Run, 'result' | 'args' | 'binding_salt'> & { exit_code?: number | null | undefined }

export interface RunFilter { session_id?: string | undefined, node?: string | undefined, status?: RunStatus | undefined, requester?: string | undefined, action?: string | undefined }

export class RunIndex {
  private readonly index = new Map<string, RunSummary>()
  /** Runs waiting for approval, by the moment their window closes. */
  private readonly expiring = new DueQueue()
  /** Approved runs not yet dispatched, by when they were approved. */
  private readonly approvedAt = new DueQueue()
  /** Dispatched and running runs, by their deadline. */
  private readonly deadlines = new DueQueue()
  /** Runs waiting for approval per requester id. */
  private readonly pendingBy = new Map<string, number>()
  /** Finished runs in the index, in the order they finished: the first to go when it is full. */
  private readonly finished = new Set<string>()
  private unfinished = 0

  constructor(private readonly limit: number) {}

  /** Indexes `run` as it is now; returns the ids of finished runs dropped to keep within the limit. */
  put(run: Run): string[] {
    const { result, args: _args, binding_salt: _salt, ...rest } = run
    const summary: RunSummary = { ...rest, exit_code: result?.exit_code }
    this.track(run.id, this.index.get(run.id), summary)
    this.index.set(run.id, summary)
    const dropped: string[] = []
    while (this.index.size > this.limit) {
      const oldest = this.finished.values().next()
      if (oldest.done) break
      this.remove(oldest.value)
      dropped.push(oldest.value)
    }
    return dropped
  }

  /** Drops a run (deleted from the bucket, or finished long ago). */
  remove(id: string): void {
    this.track(id, this.index.get(id), undefined)
    this.index.delete(id)
  }

  /** Moves a run between the queues and counts as its status changes from `prev` to `next`. */
  private track(id: string, prev: RunSummary | undefined, next: RunSummary | undefined): void {
    if (prev?.status === 'pending_approval') {
      const left = (this.pendingBy.get(prev.requester.id) ?? 1) - 1
      if (left > 0) this.pendingBy.set(prev.requester.id, left)
      else this.pendingBy.delete(prev.requester.id)
    }
    if (next?.status === 'pending_approval') this.pendingBy.set(next.requester.id, (this.pendingBy.get(next.requester.id) ?? 0) + 1)
    const open = (r: RunSummary | undefined): number => (r !== undefined && !isTerminal(r.status) ? 1 : 0)
    this.unfinished += open(next) - open(prev)
    const status = next?.status
    if (status === 'pending_approval' && next?.approval) this.expiring.set(id, dueAt(next.approval.expires_at))
    else this.expiring.delete(id)
    if (status === 'approved') this.approvedAt.set(id, dueAt(next?.approval?.approved_at ?? next?.updated_at))
    else this.approvedAt.delete(id)
    if ((status === 'dispatched' || status === 'running') && next?.deadline_at) this.deadlines.set(id, dueAt(next.deadline_at))
    else this.deadlines.delete(id)
    this.finished.delete(id)
    if (status !== undefined && isTerminal(status)) this.finished.add(id)
  }

  /** Runs matching `filter`, newest first. Filters before sorting: the periodic sweeps and every page ask for a few runs of a large index. */
  list(filter: RunFilter, limit: number): RunSummary[] {
    const hits: RunSummary[] = []
    for (const r of filter.status === 'pending_approval' ? this.pendingRuns() : this.index.values()) {
      if (filter.session_id !== undefined && r.session_id !== filter.session_id) continue
      if (filter.node !== undefined && r.node_id !== filter.node && r.node_name !== filter.node) continue
      if (filter.status !== undefined && r.status !== filter.status) continue
      if (filter.requester !== undefined && r.requester.id !== filter.requester) continue
      if (filter.action !== undefined && r.action !== filter.action) continue
      hits.push(r)
    }
    return hits.sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, limit)
  }

  summary(id: string): RunSummary | undefined { return this.index.get(id) }

  /** Runs waiting for approval, in no particular order (only those, not the whole index). */
  * pendingRuns(): IterableIterator<RunSummary> {
    for (const id of this.expiring.ids()) {
      const r = this.index.get(id)
      if (r) yield r
    }
  }

  /** How many runs wait for approval: all of them, or those of one requester. */
  pendingCount(requester?: string): number {
    return requester === undefined ? this.expiring.size : this.pendingBy.get(requester) ?? 0
  }

  /** How many runs in the index have not finished (waiting, approved, dispatched, running). */
  get unfinishedCount(): number { return this.unfinished }

  /** Runs waiting for approval whose window closed by `now`, for the approval sweep. */
  expiredBy(now: number): RunSummary[] { return this.summaries(this.expiring.due(now)) }

  /** Approved runs still not dispatched that were approved by `before`, for the approval sweep. */
  approvedBefore(before: number): RunSummary[] { return this.summaries(this.approvedAt.due(before)) }

  /** Runs waiting on a node (dispatched or running) whose deadline passed by `now`, for the deadline sweeper. */
  overdue(now: number): RunSummary[] { return this.summaries(this.deadlines.due(now)) }

  private summaries(ids: string[]): RunSummary[] {
    return ids.map((id) => this.index.get(id)).filter((r): r is RunSummary => r !== undefined)
  }
}

/** A record's time as a queue position; one that does not parse is due at once, so a sweep looks at it. */
function dueAt(text: string | undefined): number {
  const at = text === undefined ? Number.NaN : Date.parse(text)
  return Number.isFinite(at) ? at : 0
}
