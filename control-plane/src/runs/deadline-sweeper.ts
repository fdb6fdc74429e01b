/**
 * Declares runs `lost` when no result came by their deadline. A lost run is
 * never dispatched again; a result arriving later is kept beside it. A result
 * that reached the results stream by the deadline is not late, even if the
 * control plane was down then: the run is left to the results consumer.
 */
import type { Logger } from 'pino'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { RunStore, RunSummary } from './run-store.js'

/** How long past its deadline a run whose result is in the stream waits for the consumer before it is declared lost anyway. */
export const STORED_RESULT_GRACE_MS = 60_000

export class DeadlineSweeper {
  private timer: NodeJS.Timeout | undefined
  private sweeping = false
  declared = 0

  constructor(
    private readonly store: RunStore,
    private readonly audit: AuditChain,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** When the run's result was stored in the results stream, if it was. */
    private readonly resultStoredAt: (run: RunSummary) => Promise<number | undefined> = async () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => { void this.sweep() }, this.intervalMs)
    this.timer.unref()
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    try {
      const now = this.now()
      // Only runs whose deadline passed: the store keeps them by deadline, so a sweep never walks every run.
      for (const r of this.store.overdue(now)) {
        if (!r.deadline_at || Date.parse(r.deadline_at) > now) continue
        const deadline = Date.parse(r.deadline_at)
        const storedAt = await this.resultStoredAt(r).catch(() => undefined)
        if (storedAt !== undefined && storedAt <= deadline && now < deadline + STORED_RESULT_GRACE_MS) {
          this.log.debug({ runId: r.id }, 'deadline passed, but the result came in time and waits in the stream')
          continue
        }
        let mine = false
        const updated = await this.store.update(r.id, (run) => {
          if ((run.status !== 'dispatched' && run.status !== 'running') || !run.deadline_at || Date.parse(run.deadline_at) > now) return undefined
          mine = true
          return { ...run, status: 'lost', status_reason: `no result from node ${run.node_name} by the deadline ${run.deadline_at}; not retried`, finished_at: new Date(now).toISOString() }
        })
        // Only the instance whose revision-checked update won records the event.
        if (mine && updated) {
          this.declared++
          this.log.warn({ runId: r.id, node: r.node_name }, 'run lost')
          await this.audit.append({ type: 'run.lost', actor: CONTROL_PLANE_ACTOR, run_id: r.id, node: r.node_name, action: r.action, data: { deadline_at: r.deadline_at, previous_status: r.status } })
        }
      }
    } catch (err) {
      this.log.error({ err }, 'deadline sweep failed')
    } finally { this.sweeping = false }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }
}
