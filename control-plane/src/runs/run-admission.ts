/**
 * Whether the store has room for one more run before anything of it is
 * recorded: a bound on unfinished runs (the index every instance holds in
 * memory) and a cap on runs waiting for approval per requester (so one agent
 * cannot bury everyone else's requests). A request takes its place
 * synchronously, before its first await, and gives it back once its record is
 * stored (then the store counts it) or it failed: a burst of concurrent
 * requests on one instance never gets past either limit. Other replicas' runs
 * count as soon as their records arrive through the watch.
 */
import { TooManyActiveRuns, TooManyPending, withDetails } from '../http/index.js'
import type { RunStore } from './run-store.js'

export interface AdmissionLimits {
  /** Unfinished runs the store holds at most (`runs.max_active_runs`). */
  maxActive: number
  /** Runs one requester may have waiting for approval (`runs.max_pending_per_requester`). */
  maxPendingPerRequester: number
}

export class RunAdmission {
  private reservedActive = 0
  private readonly reservedPending = new Map<string, number>()

  constructor(private readonly store: Pick<RunStore, 'unfinishedCount' | 'pendingCount'>, private readonly limits: AdmissionLimits) {}

  /**
   * Takes a place for one more unfinished run — and, with `pendingFor`, for
   * one more run of that requester waiting for approval — or throws the typed
   * refusal, having taken nothing. Call the returned function once the run's
   * record is stored, or the request failed.
   */
  reserve(pendingFor?: string): () => void {
    const active = this.store.unfinishedCount + this.reservedActive
    if (active >= this.limits.maxActive) {
      throw withDetails(new TooManyActiveRuns(active, this.limits.maxActive), { limit: this.limits.maxActive, active })
    }
    if (pendingFor !== undefined) {
      const pending = this.store.pendingCount(pendingFor) + (this.reservedPending.get(pendingFor) ?? 0)
      const limit = this.limits.maxPendingPerRequester
      if (pending >= limit) throw withDetails(new TooManyPending(pendingFor, pending, limit), { limit, pending })
      this.reservedPending.set(pendingFor, (this.reservedPending.get(pendingFor) ?? 0) + 1)
    }
    this.reservedActive++
    let released = false
    return () => {
      if (released) return
      released = true
      this.reservedActive--
      if (pendingFor === undefined) return
      const left = (this.reservedPending.get(pendingFor) ?? 1) - 1
      if (left > 0) this.reservedPending.set(pendingFor, left)
      else this.reservedPending.delete(pendingFor)
    }
  }
}
