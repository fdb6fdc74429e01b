/**
 * Live output chunks (core NATS, best effort) kept briefly per run so a caller
 * that subscribes a moment after starting a run still sees its first lines.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { OutputChunkSchema, subjects, type OutputChunk } from '@writ/packs/protocol'

/** `writ.v1.node.<node>.output.<plan id>-<position>`: live output of a plan's target. */
const PLAN_TARGET_SUBJECT = /\.output\.p[0-9a-z]{9}[0-9a-f]{8}-[0-9]+$/

const MAX_RUNS = 2000
const MAX_BYTES_PER_RUN = 256 * 1024
/** Bound on everything buffered; the oldest runs go first (their final output is in the run record). */
const MAX_TOTAL_BYTES = 64 * 1024 * 1024

interface Buffered { node: string, chunks: OutputChunk[], bytes: number, dropped: boolean }

export class OutputBuffer {
  private readonly runs = new Map<string, Buffered>()
  private readonly listeners = new Map<string, Set<(c: OutputChunk) => void>>()
  private sub: Subscription | undefined
  private totalBytes = 0

  start(nc: NatsConnection): void {
    this.sub = nc.subscribe(subjects.allOutput, {
      callback: (err, msg) => {
        if (err) return
        // A plan's targets are read as grouped results, not followed live: their chunks are not parsed at all.
        if (PLAN_TARGET_SUBJECT.test(msg.subject)) return
        let json: unknown
        try { json = msg.json() } catch { return }
        const parsed = OutputChunkSchema.safeParse(json)
        if (!parsed.success) return
        const node = msg.subject.split('.')[3] ?? ''
        // The subject binds node and run; a chunk naming another run is ignored.
        let expected: string
        try { expected = subjects.output(node, parsed.data.run_id) } catch { return }
        if (expected !== msg.subject) return
        this.add(node, parsed.data)
      },
    })
  }

  add(node: string, chunk: OutputChunk): void {
    let b = this.runs.get(chunk.run_id)
    if (!b) {
      b = { node, chunks: [], bytes: 0, dropped: false }
      this.runs.set(chunk.run_id, b)
    }
    if (b.bytes + chunk.data.length <= MAX_BYTES_PER_RUN) {
      b.chunks.push(chunk)
      b.bytes += chunk.data.length
      this.totalBytes += chunk.data.length
    } else b.dropped = true
    while (this.runs.size > MAX_RUNS || this.totalBytes > MAX_TOTAL_BYTES) {
      const oldest = this.runs.keys().next().value as string
      this.totalBytes -= this.runs.get(oldest)?.bytes ?? 0
      this.runs.delete(oldest)
    }
    for (const l of this.listeners.get(chunk.run_id) ?? []) l(chunk)
  }

  /** Buffered chunks with `seq >= fromSeq`, in sequence order. */
  since(runId: string, fromSeq = 0): { chunks: OutputChunk[], node?: string, dropped: boolean } {
    const b = this.runs.get(runId)
    if (!b) return { chunks: [], dropped: false }
    return { chunks: b.chunks.filter((c) => c.seq >= fromSeq).sort((x, y) => x.seq - y.seq), node: b.node, dropped: b.dropped }
  }

  /** Follows a run's chunks; returns the unsubscribe function. */
  follow(runId: string, listener: (c: OutputChunk) => void): () => void {
    let set = this.listeners.get(runId)
    if (!set) { set = new Set(); this.listeners.set(runId, set) }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.listeners.delete(runId)
    }
  }

  stop(): void { this.sub?.unsubscribe() }
}
