/**
 * Delivers run results into JetStream: retries with backoff until acknowledged,
 * spools a result whose first attempt failed (so a restart still delivers it),
 * records delivery in the journal, and after a restart reports runs that were
 * accepted but never reported instead of leaving them to be declared lost.
 */
import type { JetStreamClient } from '@nats-io/jetstream'
import type { Logger } from 'pino'
import { PROTOCOL_VERSION, subjects, type RunResult } from '@writ/packs/protocol'
import type { RunJournal } from './run-journal.js'
import type { ResultSpool } from './result-spool.js'
import { EMPTY_SHA256 } from './run-execution.js'

const encoder = new TextEncoder()

export class ResultPublisher {
  private readonly inFlight = new Set<Promise<void>>()
  private closed = false

  constructor(
    private readonly js: JetStreamClient,
    private readonly nodeId: string,
    private readonly journal: RunJournal,
    private readonly spool: ResultSpool,
    private readonly log: Logger,
  ) {}

  /** Resolves once JetStream acknowledged the result, or the publisher closed (the result then stays spooled). */
  publish(result: RunResult): Promise<void> {
    const p = this.deliver(result)
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p))
    return p
  }

  private async deliver(result: RunResult): Promise<void> {
    let delay = 250
    let spooled = false
    for (;;) {
      try {
        await this.js.publish(subjects.result(this.nodeId, result.run_id), encoder.encode(JSON.stringify(result)), { msgID: `result-${result.run_id}`, timeout: 5000 })
        if (spooled) this.spool.remove(result.run_id)
        await this.journal.append('finished', result.run_id, { status: result.status, published: true }).catch(() => {})
        return
      } catch (e) {
        if (!spooled) { this.spool.put(result); spooled = true }
        if (this.closed) { this.log.warn({ runId: result.run_id }, 'result still spooled at shutdown; it is re-published on next start'); return }
        this.log.warn({ runId: result.run_id, err: (e as Error).message, retryInMs: delay }, 'result publish failed; retrying')
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(delay * 2, 30_000)
      }
    }
  }

  /** Re-publishes what the last run of this runner left: spooled results, and unknown outcomes for unreported runs. */
  recover(): void {
    const { results, unreadable } = this.spool.pending()
    for (const f of unreadable) this.log.error({ file: f }, 'spooled result is unreadable; left in place for inspection')
    for (const r of results) { this.log.info({ runId: r.run_id }, 're-publishing a result spooled before restart'); void this.publish(r) }
    const spooled = new Set(results.map((r) => r.run_id))
    for (const { runId, action } of this.journal.unfinished()) {
      if (spooled.has(runId)) continue
      this.log.warn({ runId, action }, 'run was accepted before the last stop and never reported; publishing an unknown-outcome result')
      const now = new Date().toISOString()
      void this.publish({
        v: PROTOCOL_VERSION, run_id: runId, node_id: this.nodeId, action, status: 'failed',
        error: 'the runner stopped before this run finished or before its result was published; whether the action took effect is unknown',
        exit_code: null, signal: null, started_at: now, finished_at: now, duration_ms: 0, stdout: '', stderr: '',
        stdout_truncated: false, stderr_truncated: false, stdout_bytes: 0, stderr_bytes: 0, output_sha256: EMPTY_SHA256,
      })
    }
  }

  /** Waits (bounded) for deliveries under way, then stops retrying. */
  async close(waitMs: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, waitMs).unref())])
    this.closed = true
  }
}
