/**
 * Where each principal's and each run's audit events sit in `WRIT_AUDIT`, so
 * that `GET /v1/audit` reads an agent's few events instead of the whole chain.
 * The index follows the stream from its first event, in this instance's
 * memory (sequence numbers only: the events stay in the stream). It is a
 * shortcut, never the authority: every event it points to is read back and
 * checked like any other, and whatever it has not reached yet is scanned.
 *
 * It starts with the first audit read on this instance, so an instance no one
 * reads the audit from does not parse every event a second time.
 */
import { jetstream, DeliverPolicy, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import { AUDIT_STREAM } from '../nats/index.js'

/** What an index lookup is keyed by: a run's events, or a principal's (its own and those of the runs it requested). */
export type AuditIndexKey = { run: string } | { principal: string }

const RESUME_DELAY_MS = 500

export class AuditIndex {
  private readonly js: JetStreamClient
  private readonly byRun = new Map<string, number[]>()
  private readonly byPrincipal = new Map<string, number[]>()
  /** Requester of each run, from its `run.requested` event. */
  private readonly requesters = new Map<string, string>()
  private running = false
  private messages: ConsumerMessages | undefined
  /** Every event stored at or below this sequence is in the index. */
  indexedThrough = 0

  /** `requesterOf` answers for runs whose `run.requested` event the stream no longer holds (aged out). */
  constructor(private readonly nc: NatsConnection, private readonly requesterOf: (runId: string) => string | undefined, private readonly log: Logger) {
    this.js = jetstream(nc)
  }

  /** Starts following the stream (once; later calls do nothing). */
  start(): void {
    if (this.running) return
    this.running = true
    void this.follow()
  }

  stop(): void {
    this.running = false
    this.messages?.stop()
  }

  /** Stream sequences in [from, through] of the events under `key`, ascending. */
  lookup(key: AuditIndexKey, from: number, through: number): number[] {
    const seqs = ('run' in key ? this.byRun.get(key.run) : this.byPrincipal.get(key.principal)) ?? []
    const start = firstAtLeast(seqs, from)
    const end = firstAtLeast(seqs, through + 1)
    return seqs.slice(start, end)
  }

  private async follow(): Promise<void> {
    while (this.running) {
      try {
        const consumer = await this.js.consumers.get(AUDIT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.indexedThrough + 1 })
        if (!this.running) break
        this.messages = await consumer.consume({ max_messages: 512 })
        for await (const m of this.messages) this.add(m.seq, m.string())
      } catch (err) {
        if (this.running) this.log.warn({ err, indexedThrough: this.indexedThrough }, 'audit index feed interrupted; resuming')
      }
      this.messages = undefined
      if (this.nc.isClosed()) break
      if (this.running) await new Promise((r) => setTimeout(r, RESUME_DELAY_MS))
    }
  }

  private add(seq: number, text: string): void {
    if (seq <= this.indexedThrough) return
    this.indexedThrough = seq
    let event: { type?: unknown, run_id?: unknown, actor?: { id?: unknown } | null }
    // Not JSON: nothing to key it by. Operators see it in unfiltered reads, which scan.
    try { event = JSON.parse(text) as typeof event } catch { return }
    if (event === null || typeof event !== 'object') return
    const actor = typeof event.actor?.id === 'string' ? event.actor.id : undefined
    const runId = typeof event.run_id === 'string' ? event.run_id : undefined
    if (runId !== undefined) {
      push(this.byRun, runId, seq)
      if (event.type === 'run.requested' && actor !== undefined && !this.requesters.has(runId)) this.requesters.set(runId, actor)
    }
    if (actor !== undefined) push(this.byPrincipal, actor, seq)
    const requester = runId === undefined ? undefined : this.requesters.get(runId) ?? this.requesterOf(runId)
    if (requester !== undefined && requester !== actor) push(this.byPrincipal, requester, seq)
  }
}

function push(map: Map<string, number[]>, key: string, seq: number): void {
  const list = map.get(key)
  if (list) list.push(seq)
  else map.set(key, [seq])
}

/** Index of the first element of ascending `seqs` that is ≥ `value` (binary search). */
function firstAtLeast(seqs: readonly number[], value: number): number {
  let lo = 0
  let hi = seqs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((seqs[mid] as number) < value) lo = mid + 1
    else hi = mid
  }
  return lo
}
