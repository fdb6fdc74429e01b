/**
 * Records runner results from `WRIT_RESULTS` through one durable consumer that
 * every control-plane instance pulls from. A result is acknowledged only after
 * it is audited and stored, so a control plane killed mid-run records it after
 * restart (or another instance does).
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import { RunResultSchema, streams, subjects, type RunResult } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { RESULTS_CONSUMER, withJetStreamRetry } from '../nats/index.js'
import { isTerminal, type Run, type RunStatus } from './run-record.js'
import type { RunStore } from './run-store.js'
import type { AuditChain } from '../audit/index.js'

const STATUS_OF: Record<RunResult['status'], RunStatus> = {
  succeeded: 'succeeded', failed: 'failed', timed_out: 'timed_out', canceled: 'canceled', refused: 'refused_by_runner',
}
const MAX_IN_FLIGHT = 64

export class ResultsConsumer {
  private messages: ConsumerMessages | undefined
  private readonly inFlight = new Set<Promise<void>>()
  recorded = 0

  constructor(
    private readonly nc: NatsConnection, private readonly store: RunStore, private readonly audit: AuditChain, private readonly log: Logger,
    /** Called with each run this instance recorded as finished. */
    private readonly onFinished: (run: Run) => void = () => {},
  ) {}

  /** Results of runs that are not in the run store (a plan's targets): true when the handler took the message on. */
  private elsewhere: ((m: JsMsg, result: RunResult) => boolean) | undefined

  /** Hands results of a plan's targets to `handler` (plans/plan-results.ts), which acknowledges them once recorded. */
  routeElsewhere(handler: (m: JsMsg, result: RunResult) => boolean): void { this.elsewhere = handler }

  /** The current start's state: a stop ends its loop even if a later start runs a new one. */
  private session = { stopped: true }

  async start(): Promise<void> {
    const session = { stopped: false }
    this.session = session
    await withJetStreamRetry(`consumer ${RESULTS_CONSUMER}`, () => this.ensureConsumer())
    void this.supervise(session)
  }

  /** Keeps consuming across server losses and leader changes until stopped. */
  private async supervise(session: { stopped: boolean }): Promise<void> {
    while (!session.stopped) {
      try {
        await this.ensureConsumer()
        const consumer = await jetstream(this.nc).consumers.get(streams.results.name, RESULTS_CONSUMER)
        // Short pulls: a pull parked on a server that died is replaced within seconds.
        this.messages = await consumer.consume({ max_messages: 256, expires: 5000 })
        if (session.stopped) { this.messages.stop(); break }
        this.watchStatus(this.messages)
        await this.loop(this.messages)
      } catch (err) {
        if (!session.stopped) this.log.warn({ err }, 'results consumer interrupted; resuming')
      }
      if (!session.stopped) await new Promise((r) => setTimeout(r, 500))
    }
  }

  /** One manager for the consumer's lifetime (made on first success: making one asks the server). */
  private jsm: JetStreamManager | undefined
  private async manager(): Promise<JetStreamManager> {
    return this.jsm ??= await jetstreamManager(this.nc)
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = await this.manager()
    try {
      await jsm.consumers.info(streams.results.name, RESULTS_CONSUMER)
    } catch {
      await jsm.consumers.add(streams.results.name, {
        durable_name: RESULTS_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
        ack_wait: 30_000_000_000, max_ack_pending: 20_000,
      }).catch(async (err: unknown) => {
        // Another instance created it first.
        await jsm.consumers.info(streams.results.name, RESULTS_CONSUMER).catch(() => { throw err })
      })
    }
  }

  private watchStatus(messages: ConsumerMessages): void {
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === 'heartbeats_missed' || s.type === 'consumer_not_found' || s.type === 'consumer_deleted' || s.type === 'no_responders') {
          // The consumer's leader may have moved with a lost server: start over with a fresh pull.
          this.log.warn({ event: s.type }, 'results consumer lost its server; re-subscribing')
          messages.stop()
          return
        }
      }
    })().catch(() => {})
  }

  private async loop(messages: ConsumerMessages): Promise<void> {
    {
      for await (const m of messages) {
        const p = this.handle(m).catch((err: unknown) => {
          this.log.error({ err, subject: m.subject }, 'cannot record result; redelivering later')
          m.nak(2000)
        })
        this.inFlight.add(p)
        void p.finally(() => this.inFlight.delete(p))
        if (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight)
      }
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    let json: unknown
    try { json = m.json() } catch { json = undefined }
    const parsed = RunResultSchema.safeParse(json)
    if (!parsed.success || m.subject !== safeResultSubject(parsed.data)) {
      this.log.warn({ subject: m.subject }, 'dropped malformed result')
      m.term()
      return
    }
    const result = parsed.data
    if (this.elsewhere?.(m, result)) return
    const current = await this.store.current(result.run_id)
    if (!current) {
      this.log.warn({ runId: result.run_id, node: result.node_id }, 'result for a run this control plane does not know')
      m.ack()
      return
    }
    const run = current.run
    if (run.node_id !== result.node_id) {
      this.log.warn({ runId: run.id, node: result.node_id, expected: run.node_id }, 'result from a node the run was not sent to')
      m.term()
      return
    }
    if (isTerminal(run.status)) {
      // Redelivery after a stop between store and ack (the audit event landed
      // first), or a result after `lost`.
      if (run.status === 'lost' && !run.late_result) {
        await this.audit.append(auditBody(run, result, 'run.late_result'))
        await this.store.update(run.id, (r) => ({ ...r, late_result: { status: result.status, finished_at: result.finished_at } }))
      }
      m.ack()
      return
    }
    // Audit first, then the record: a finished record always has its event
    // on the chain. A stop in between redelivers, and the event is appended
    // again, marked as possibly repeating the one that landed.
    await this.audit.append(auditBody(run, result, 'run.finished', m.redelivered))
    const finished = await this.store.update(run.id, (r) => {
      if (!isTerminal(r.status)) return applyResult(r, result)
      // Declared lost while this result was being audited: kept beside the verdict, as a late result is.
      if (r.status === 'lost' && !r.late_result) return { ...r, late_result: { status: result.status, finished_at: result.finished_at } }
      return undefined
    })
    this.recorded++
    if (finished && isTerminal(finished.status)) this.onFinished(finished)
    m.ack()
  }

  /**
   * When the result of `runId` was stored in the results stream (ms since the
   * epoch), or undefined when it is not there: a stored result is recorded
   * by this consumer, however late the control plane gets to it.
   */
  async storedAt(nodeId: string, runId: string): Promise<number | undefined> {
    const jsm = await this.manager()
    const msg = await jsm.streams.getMessage(streams.results.name, { last_by_subj: subjects.result(nodeId, runId) }).catch(() => null)
    return msg ? msg.time.getTime() : undefined
  }

  /** The result of `runId` as stored in the results stream, if it is there (a plan target's output is read from it). */
  async storedResult(nodeId: string, runId: string): Promise<RunResult | undefined> {
    const jsm = await this.manager()
    const msg = await jsm.streams.getMessage(streams.results.name, { last_by_subj: subjects.result(nodeId, runId) }).catch(() => null)
    if (!msg) return undefined
    let json: unknown
    try { json = msg.json() } catch { return undefined }
    const parsed = RunResultSchema.safeParse(json)
    return parsed.success && parsed.data.run_id === runId ? parsed.data : undefined
  }

  async stop(): Promise<void> {
    this.session.stopped = true
    this.messages?.stop()
    await Promise.allSettled([...this.inFlight])
  }
}

function safeResultSubject(r: RunResult): string | undefined {
  try { return subjects.result(r.node_id, r.run_id) } catch { return undefined }
}

export function applyResult(run: Run, r: RunResult): Run {
  const status = STATUS_OF[r.status]
  const reason = status === 'succeeded'
    // HTTP and listing actions run no process: there is no exit code to report.
    ? r.exit_code === null ? 'completed' : `exited ${r.exit_code}`
    : r.refusal ? `runner refused (${r.refusal.code}): ${r.refusal.message}` : r.error ?? `${r.status} (exit ${r.exit_code ?? 'none'}${r.signal ? `, signal ${r.signal}` : ''})`
  return {
    ...run, status, status_reason: reason, finished_at: r.finished_at,
    ...(r.refusal ? { refusal: r.refusal } : {}),
    result: {
      exit_code: r.exit_code, signal: r.signal, started_at: r.started_at, finished_at: r.finished_at, duration_ms: r.duration_ms,
      stdout: r.stdout, stderr: r.stderr, stdout_truncated: r.stdout_truncated, stderr_truncated: r.stderr_truncated,
      stdout_bytes: r.stdout_bytes, stderr_bytes: r.stderr_bytes, output_sha256: r.output_sha256,
      ...(r.parsed !== undefined ? { parsed: r.parsed } : {}), ...(r.parse_error !== undefined ? { parse_error: r.parse_error } : {}),
    },
  }
}

function auditBody(run: Run, r: RunResult, type: string, redelivered = false) {
  return {
    type, actor: { id: `node:${r.node_id}`, kind: 'system' as const }, run_id: run.id, node: run.node_name, action: run.action,
    data: {
      status: STATUS_OF[r.status], exit_code: r.exit_code, signal: r.signal, duration_ms: r.duration_ms,
      output_sha256: r.output_sha256, stdout_bytes: r.stdout_bytes, stderr_bytes: r.stderr_bytes,
      ...(r.refusal ? { refusal: r.refusal } : {}), ...(r.error ? { error: r.error } : {}),
      // A result delivered again after a stop: this event may repeat one that landed before it.
      ...(redelivered ? { redelivered: true } : {}),
    },
  }
}
