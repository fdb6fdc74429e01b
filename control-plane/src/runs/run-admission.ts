/**
 * Whether the store has room for one more run before anything of it is
 * recorded: a bound on unfinished runs (the index every instance holds in
 * memory). A request takes its place synchronously, before its first await,
 * and gives it back once its record is stored (then the store counts it) or
 * it failed: a burst of concurrent requests on one instance never gets past
 * the bound. Other replicas' runs count as soon as their records arrive
 * through the watch.
 */
import { TooManyActiveRuns, withDetails } from '../http/index.js'
import type { RunStore } from './run-store.js'

export interface AdmissionLimits {
  /** Unfinished runs the store holds at most (`runs.max_active_runs`). */
  maxActive: number
}

export class RunAdmission {
  private reservedActive = 0

  constructor(private readonly store: Pick<RunStore, 'unfinishedCount'>, private readonly limits: AdmissionLimits) {}

  /**
   * Takes a place for one more unfinished run, or throws the typed refusal,
   * having taken nothing. Call the returned function once the run's record
   * is stored, or the request failed.
   */
  reserve(): () => void {
    const active = this.store.unfinishedCount + this.reservedActive
    if (active >= this.limits.maxActive) {
      throw withDetails(new TooManyActiveRuns(active, this.limits.maxActive), { limit: this.limits.maxActive, active })
    }
    this.reservedActive++
    let released = false
    return () => {
      if (released) return
      released = true
      this.reservedActive--
    }
  }
}
