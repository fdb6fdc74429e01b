/**
 * One page of `GET /v1/audit`. A page reads at most `maxScan` stored events,
 * so no request walks the whole chain: a read by run, by actor or by an agent
 * (who sees only its own events and those of its runs) fetches just the events
 * the index points to, and scans only what the index has not reached yet; an
 * operator's unfiltered or type-filtered read scans from `since_seq`. When a
 * page stops before the end of the stream (its limit, or its scan bound), it
 * says where the next one starts.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { Logger } from 'pino'
import type { Principal } from '../auth/index.js'
import { AUDIT_STREAM, retryTransient } from '../nats/index.js'
import type { RunStore } from '../runs/index.js'
import type { AuditChain } from './audit-chain.js'
import { AuditEventSchema, type AuditEvent, type StoredEvent } from './audit-event.js'
import { AuditIndex, type AuditIndexKey } from './audit-index.js'
import type { AuditQuery } from './audit-schemas.js'

export interface AuditPage {
  /** The events, as stored, in stream order. */
  lines: string[]
  /** Where the next page starts (`since_seq`); undefined when this page reached the end of the stream. */
  next: number | undefined
}

type Stored = StoredEvent & { streamSeq: number }

/** Gets in flight at once when reading the events an index lookup found. */
const FETCH_WINDOW = 32

/** Whether `principal` may see `event` (also used by the WebSocket stream). */
export function auditVisible(principal: Principal, event: AuditEvent, store: RunStore): boolean {
  if (principal.kind === 'operator') return true
  if (event.actor?.id === principal.id) return true
  if (event.run_id === undefined) return false
  return store.summary(event.run_id)?.requester.id === principal.id
}

export interface AuditReaderOptions {
  /** Most stored events one page reads (config `audit.max_scan`). */
  maxScan: number
  /** Counts every stored event a page reads. */
  eventsRead: Counter
  log: Logger
}

export class AuditReader {
  private readonly index: AuditIndex

  private constructor(private readonly jsm: JetStreamManager, private readonly chain: AuditChain, private readonly store: RunStore, nc: NatsConnection, private readonly opts: AuditReaderOptions) {
    this.index = new AuditIndex(nc, (runId) => store.summary(runId)?.requester.id, opts.log)
  }

  static async open(nc: NatsConnection, chain: AuditChain, store: RunStore, opts: AuditReaderOptions): Promise<AuditReader> {
    return new AuditReader(await jetstreamManager(nc), chain, store, nc, opts)
  }

  /** Every event stored at or below this sequence is indexed (0 until the first read starts the index). */
  get indexedThrough(): number { return this.index.indexedThrough }

  stop(): void { this.index.stop() }

  async page(principal: Principal, q: AuditQuery): Promise<AuditPage> {
    this.index.start()
    const last = await this.chain.lastSeq()
    const lines: string[] = []
    let pos = q.since_seq
    let budget = this.opts.maxScan
    const take = (stored: Stored): boolean => {
      budget--
      this.opts.eventsRead.inc()
      pos = stored.streamSeq + 1
      if (this.admits(principal, q, stored)) lines.push(stored.text)
      return lines.length < q.limit && budget > 0
    }
    const done = (): AuditPage => ({ lines, next: pos <= last ? pos : undefined })

    const key = indexKey(principal, q)
    const through = Math.min(this.index.indexedThrough, last)
    if (key && pos <= through) {
      const seqs = this.index.lookup(key, pos, through)
      const batch = seqs.slice(0, budget)
      for await (const stored of this.readAt(batch)) if (!take(stored)) return done()
      if (batch.length < seqs.length) { pos = seqs[batch.length] as number; return done() }
      // Past the last event the index found, up to where it reaches, nothing is for this key.
      pos = through + 1
    }
    if (pos <= last) {
      for await (const stored of this.chain.read(pos)) {
        if (stored.streamSeq > last) break
        if (!take(stored)) break
      }
    }
    return done()
  }

  private admits(principal: Principal, q: AuditQuery, stored: Stored): boolean {
    const parsed = AuditEventSchema.safeParse(safeJson(stored.text))
    // Unparseable events are passed through to operators verbatim: hiding them would hide tampering.
    if (!parsed.success) return principal.kind === 'operator' && !q.run_id && !q.type && !q.actor
    const e = parsed.data
    if (q.run_id !== undefined && e.run_id !== q.run_id) return false
    if (q.type !== undefined && e.type !== q.type) return false
    if (q.actor !== undefined && e.actor?.id !== q.actor) return false
    return auditVisible(principal, e, this.store)
  }

  /** The stored events at `seqs` (ascending), in that order, a window of gets in flight; a sequence holding no message is skipped. */
  private async *readAt(seqs: readonly number[]): AsyncGenerator<Stored> {
    const get = (seq: number): Promise<Stored | undefined> =>
      retryTransient(() => this.jsm.streams.getMessage(AUDIT_STREAM, { seq })).then((m) => (m ? { text: m.string(), streamSeq: seq } : undefined))
    const inflight: Array<Promise<Stored | undefined>> = []
    let next = 0
    try {
      while (next < seqs.length || inflight.length > 0) {
        while (inflight.length < FETCH_WINDOW && next < seqs.length) inflight.push(get(seqs[next++] as number))
        const stored = await inflight.shift()
        if (stored) yield stored
      }
    } finally {
      // A page that stops early leaves gets in flight: their answers, or failures, go nowhere.
      for (const p of inflight) p.catch(() => {})
    }
  }
}

/** What the index can answer a read by: its run, its actor, or (for an agent) the agent itself. */
function indexKey(principal: Principal, q: AuditQuery): AuditIndexKey | undefined {
  if (q.run_id !== undefined) return { run: q.run_id }
  if (principal.kind !== 'operator') return { principal: principal.id }
  if (q.actor !== undefined) return { principal: q.actor }
  return undefined
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}
