/**
 * Recording plan targets' outcomes in batches: results the shared durable
 * consumer on `WRIT_RESULTS` hands this instance (whichever instance gets
 * them), and the outcomes a dispatch learns from the runners' answers
 * (refused, node offline). A batch is one `plan.results` audit event, then
 * one progress-log entry, and only then are its messages acknowledged: a
 * control plane killed in between gets them redelivered (to it or another
 * instance), and the log keeps the first outcome of each target. So each
 * target's result is on the chain, at the cost of two JetStream writes per
 * batch rather than per target.
 */
import { createHash } from 'node:crypto'
import type { JsMsg } from '@nats-io/jetstream'
import { canonicalJson, parsePlanRunId, type RunResult } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import type { RunStatus } from '../runs/index.js'
import type { PlanStore } from './plan-store.js'
import type { TargetResult } from './plan-schemas.js'

const STATUS_OF: Record<RunResult['status'], RunStatus> = {
  succeeded: 'succeeded', failed: 'failed', timed_out: 'timed_out', canceled: 'canceled', refused: 'refused_by_runner',
}
/** Outcomes per batch at most, and how long the first of a batch waits for company. */
const BATCH_MAX = 256
const BATCH_WAIT_MS = 15
/** One group's example output, in characters. */
const SAMPLE_CHARS = 4000

interface Pending { entry: TargetResult, ack?: () => void, nak?: () => void, redelivered: boolean }

export function groupKey(status: RunStatus, exitCode: number | null | undefined, basis: string): string {
  return createHash('sha256').update(`${status}\u0000${exitCode ?? ''}\u0000${basis}`).digest('hex').slice(0, 32)
}

/**
 * A target's outcome from its runner's result. `known` maps an output (its
 * status, exit code and SHA-256) to the group it fell in before: the same
 * output always has the same parsed value, so only a new output is
 * canonicalized and hashed again (a thousand identical answers cost one).
 */
export function resultEntry(position: number, r: RunResult, known?: Map<string, string>): TargetResult {
  const status = STATUS_OF[r.status]
  const seen = known && !r.refusal ? `${status}\u0000${r.exit_code ?? ''}\u0000${r.output_sha256}\u0000${r.error ?? ''}` : undefined
  const group = seen !== undefined ? known?.get(seen) : undefined
  if (group !== undefined) {
    return { p: position, status, exit_code: r.exit_code, output_sha256: r.output_sha256, duration_ms: r.duration_ms, group, ...(r.error ? { reason: r.error } : {}), at: r.finished_at }
  }
  const entry = freshEntry(position, r, status)
  if (seen !== undefined) known?.set(seen, entry.group)
  return entry
}

function freshEntry(position: number, r: RunResult, status: RunStatus): TargetResult {
  const reason = r.refusal ? `runner refused (${r.refusal.code}): ${r.refusal.message}` : r.error
  // Identical output, or identical parsed value where the action has a parser; refusals group by their code.
  const parsed = r.parsed !== undefined ? canonicalJson(r.parsed) : undefined
  const basis = r.refusal ? `refusal:${r.refusal.code}` : parsed !== undefined ? `parsed:${parsed}` : `out:${r.output_sha256}${status === 'succeeded' ? '' : `:${reason ?? ''}`}`
  const sample = r.refusal ? reason : parsed ?? (r.stdout !== '' ? r.stdout : r.stderr !== '' ? r.stderr : reason ?? '')
  return {
    p: position, status, exit_code: r.exit_code, output_sha256: r.output_sha256, duration_ms: r.duration_ms,
    group: groupKey(status, r.exit_code, parsed !== undefined ? createHash('sha256').update(basis).digest('hex') : basis),
    sample: sample === undefined ? undefined : sample.length > SAMPLE_CHARS ? `${sample.slice(0, SAMPLE_CHARS)}…` : sample,
    ...(reason ? { reason } : {}), at: r.finished_at,
  }
}

export class PlanResults {
  private readonly queues = new Map<string, { items: Pending[], timer: NodeJS.Timeout | undefined }>()
  /** Groups this instance already wrote an example of, per plan (later entries of the group carry none). */
  private readonly sampled = new Map<string, Set<string>>()
  /** Per plan, the group each output seen so far fell in (resultEntry). */
  private readonly outputs = new Map<string, Map<string, string>>()
  private readonly flushing = new Set<Promise<void>>()

  constructor(private readonly store: PlanStore, private readonly audit: AuditChain, private readonly instanceId: string, private readonly log: Logger) {}

  /**
   * A result from `WRIT_RESULTS` for a plan's target: true when it was one
   * (this recorder acknowledges it once recorded), false for any other run.
   */
  fromConsumer(m: JsMsg, result: RunResult): boolean {
    const target = parsePlanRunId(result.run_id)
    if (!target) return false
    void this.store.plan(target.planId).then((plan) => {
      const t = plan?.targets[target.position]
      if (!plan || !t) {
        this.log.warn({ runId: result.run_id }, 'result for a plan target this control plane does not know')
        m.ack()
        return
      }
      if (t.node_id !== result.node_id) {
        this.log.warn({ runId: result.run_id, node: result.node_id, expected: t.node_id }, 'result from a node the plan target is not')
        m.term()
        return
      }
      let known = this.outputs.get(target.planId)
      if (!known) {
        // A few plans' worth: a plan's results arrive together.
        if (this.outputs.size >= 64) this.outputs.delete(this.outputs.keys().next().value as string)
        this.outputs.set(target.planId, known = new Map())
      }
      this.enqueue(target.planId, { entry: resultEntry(target.position, result, known), ack: () => m.ack(), nak: () => m.nak(2000), redelivered: m.redelivered })
    }, (err: unknown) => {
      this.log.error({ err, runId: result.run_id }, 'cannot read the plan of a result; redelivering later')
      m.nak(2000)
    })
    return true
  }

  /** Outcomes the rollout learned itself (refusals it was answered, nodes with no runner listening); resolves once recorded. */
  record(planId: string, entries: TargetResult[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let left = entries.length
      if (left === 0) { resolve(); return }
      for (const entry of entries) this.enqueue(planId, { entry, ack: () => { if (--left === 0) resolve() }, nak: () => reject(new Error('could not record plan results')), redelivered: false })
    })
  }

  private enqueue(planId: string, item: Pending): void {
    let q = this.queues.get(planId)
    if (!q) this.queues.set(planId, q = { items: [], timer: undefined })
    q.items.push(item)
    if (q.items.length >= BATCH_MAX) this.flush(planId)
    else q.timer ??= setTimeout(() => this.flush(planId), BATCH_WAIT_MS)
  }

  private flush(planId: string): void {
    const q = this.queues.get(planId)
    if (!q || q.items.length === 0) return
    clearTimeout(q.timer)
    q.timer = undefined
    const batch = q.items.splice(0, BATCH_MAX)
    if (q.items.length > 0) q.timer = setTimeout(() => this.flush(planId), 0)
    else this.queues.delete(planId)
    const p = this.write(planId, batch).finally(() => this.flushing.delete(p))
    this.flushing.add(p)
  }

  private async write(planId: string, batch: Pending[]): Promise<void> {
    let sampled = this.sampled.get(planId)
    if (!sampled) this.sampled.set(planId, sampled = new Set())
    const results = batch.map(({ entry }): TargetResult => {
      if (sampled.has(entry.group)) { const { sample: _drop, ...rest } = entry; return rest }
      sampled.add(entry.group)
      return entry
    })
    try {
      // The chain first: a target's outcome in the log always has its audit event.
      await this.audit.append({
        type: 'plan.results', actor: CONTROL_PLANE_ACTOR, run_id: planId,
        data: {
          plan_id: planId,
          results: results.map((r) => ({ p: r.p, status: r.status, exit_code: r.exit_code ?? null, output_sha256: r.output_sha256, ...(r.reason ? { reason: r.reason.slice(0, 500) } : {}) })),
          ...(batch.some((b) => b.redelivered) ? { redelivered: true } : {}),
        },
      })
      await this.store.appendResults(planId, { kind: 'results', results, instance: this.instanceId })
      for (const b of batch) b.ack?.()
    } catch (err) {
      this.log.error({ err, plan: planId, targets: batch.length }, 'cannot record plan results; redelivering later')
      for (const r of results) if (r.sample !== undefined) sampled.delete(r.group)
      // The redelivered results are grouped afresh, examples and all.
      this.outputs.delete(planId)
      for (const b of batch) b.nak?.()
    }
  }

  async close(): Promise<void> {
    for (const id of [...this.queues.keys()]) this.flush(id)
    await Promise.allSettled([...this.flushing])
  }
}
