/**
 * Runs in the JetStream KV bucket `WRIT_RUNS`. Every change is a
 * revision-checked update, so two control planes never overwrite each other.
 * One watch per instance keeps a light index (no output) for listings, the
 * deadline sweeper and long-poll waiters — whichever instance made the change.
 * Runs that have not finished are also kept by the moment a sweep must look
 * at them (approval window, dispatch grace, deadline) and counted per
 * requester, so sweeps and caps never scan the whole index (run-index.ts).
 */
import { EventEmitter } from 'node:events'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import type { Logger } from 'pino'
import { withJetStreamRetry, isTransientJetStreamError, retryTransient } from '../nats/index.js'
import { RunIndex, type RunFilter, type RunSummary } from './run-index.js'
import { RunSchema, isTerminal, type Run } from './run-record.js'

export type { RunFilter, RunSummary } from './run-index.js'

export const RUNS_BUCKET = 'WRIT_RUNS'
const WRONG_LAST_SEQUENCE = 10071
/** Finished runs are dropped from the index, oldest finished first, once it holds more than this; unfinished runs always stay. */
const INDEX_LIMIT = 20_000

export class RunStoreError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'RunStoreError' }
}

export class RunStore {
  private readonly events = new EventEmitter()
  /** Summaries for listings, sweeps and caps (run-index.ts). */
  private readonly index = new RunIndex(INDEX_LIMIT)
  /** Full records of runs still in flight, with their revision: the first guess for an update. */
  private readonly active = new Map<string, { run: Run, revision: number }>()
  /** Latest revision seen per run, so the watch echo of our own writes is not parsed again. */
  private readonly revisions = new Map<string, number>()
  private stopWatch: (() => void) | undefined
  /**
   * Our own writes still waiting for their ack, by run id. The watch often
   * delivers a write before its ack arrives; matching the bytes spares
   * parsing and validating a record this instance just serialized.
   */
  private readonly writing = new Map<string, { bytes: Uint8Array, run: Run }>()
  /** The JSON each observed record was stored as, so an HTTP reply can reuse it instead of serializing again. */
  private readonly stored = new WeakMap<Run, string>()

  private constructor(private readonly kv: KV, private readonly log: Logger) {
    this.events.setMaxListeners(0)
  }

  /** Opens (creating if needed) the bucket; idempotent across instances. */
  static async open(nc: NatsConnection, replicas: number, log: Logger): Promise<RunStore> {
    const kv = await withJetStreamRetry(`bucket ${RUNS_BUCKET}`, () => new Kvm(nc).create(RUNS_BUCKET, { replicas, history: 5 }))
    return new RunStore(kv, log)
  }

  /**
   * Starts the instance-wide watch; resolves once the initial values are
   * loaded. The watch is restarted if it ends (server loss), resuming after
   * the last revision seen.
   */
  async startWatch(): Promise<void> {
    let initialDone: () => void = () => {}
    const initial = new Promise<void>((resolve) => { initialDone = resolve })
    let stopped = false
    let current: { stop(): void } | undefined
    this.stopWatch = () => { stopped = true; current?.stop() }
    let lastRevision = 0
    let loading = (await this.kv.status()).values > 0
    if (!loading) initialDone()
    void (async () => {
      while (!stopped) {
        try {
          const it = await this.kv.watch(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {})
          current = it
          if (stopped) { it.stop(); break }
          for await (const e of it) {
            lastRevision = Math.max(lastRevision, e.revision)
            if (e.operation === 'PUT') {
              if ((this.revisions.get(e.key) ?? 0) >= e.revision) continue
              const mine = this.writing.get(e.key)
              if (mine && Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).equals(mine.bytes)) { this.observe(mine.run, e.revision); continue }
              const parsed = RunSchema.safeParse(safeJson(e.value))
              if (parsed.success) this.observe(parsed.data, e.revision)
              else this.log.warn({ key: e.key }, 'ignored malformed run record')
            } else { this.forget(e.key) }
            // `delta` counts the initial values still to come; 0 means the replay is over.
            if (loading && (e.delta === 0 || e.isUpdate)) { loading = false; initialDone() }
          }
        } catch (err) {
          if (!stopped) this.log.warn({ err }, 'run watch interrupted; resuming')
        }
        if (!stopped) await new Promise((r) => setTimeout(r, 500))
      }
    })()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([initial, new Promise((r) => { timer = setTimeout(r, 5000) })])
    clearTimeout(timer)
  }

  private observe(run: Run, revision: number): void {
    if ((this.revisions.get(run.id) ?? 0) >= revision) return
    this.revisions.set(run.id, revision)
    if (isTerminal(run.status)) this.active.delete(run.id)
    else if (this.active.size < INDEX_LIMIT) this.active.set(run.id, { run, revision })
    for (const dropped of this.index.put(run)) this.forgetRecord(dropped)
    this.events.emit(run.id, run)
    this.events.emit('*', run)
  }

  /** Drops a run from the index (deleted from the bucket). */
  private forget(id: string): void {
    this.index.remove(id)
    this.forgetRecord(id)
  }

  private forgetRecord(id: string): void {
    this.active.delete(id)
    this.revisions.delete(id)
  }

  /** The JSON `run` was stored as, when it is a record this instance wrote or observed unchanged. */
  serialized(run: Run): string | undefined { return this.stored.get(run) }

  private startWrite(run: Run, value: string): Uint8Array {
    const bytes = Buffer.from(value)
    this.writing.set(run.id, { bytes, run })
    this.stored.set(run, value)
    return bytes
  }

  private endWrite(id: string, bytes: Uint8Array): void {
    if (this.writing.get(id)?.bytes === bytes) this.writing.delete(id)
  }

  async create(run: Run): Promise<number> {
    const value = JSON.stringify(run)
    const bytes = this.startWrite(run, value)
    try {
      const rev = await retryTransient(async () => {
        try { return await this.kv.create(run.id, bytes) } catch (err) {
          // A retried create whose first attempt landed finds its own value.
          if (isTransientJetStreamError(err)) throw err
          const e = await this.kv.get(run.id)
          if (e && e.operation === 'PUT' && e.string() === value) return e.revision
          throw err
        }
      })
      this.observe(run, rev)
      return rev
    } finally { this.endWrite(run.id, bytes) }
  }

  async get(id: string): Promise<{ run: Run, revision: number } | undefined> {
    const e = await retryTransient(() => this.kv.get(id))
    if (!e || e.operation !== 'PUT') return undefined
    const parsed = RunSchema.safeParse(safeJson(e.value))
    if (!parsed.success) throw new RunStoreError(`run record ${id} is malformed: ${parsed.error.issues[0]?.message}`)
    return { run: parsed.data, revision: e.revision }
  }

  /** The run as last seen by this instance if it is in flight (no read), else as stored. */
  async current(id: string): Promise<{ run: Run, revision: number } | undefined> {
    return this.active.get(id) ?? this.get(id)
  }

  /**
   * Applies `change` with a revision check, re-reading and retrying on a
   * conflict. `change` returns undefined to leave the record as it is.
   */
  async update(id: string, change: (run: Run) => Run | undefined): Promise<Run | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      // The cached revision saves a read; if another writer moved on, the check fails and we re-read.
      const current = (attempt === 0 ? this.active.get(id) : undefined) ?? await this.get(id)
      if (!current) return undefined
      const next = change(current.run)
      if (!next) return current.run
      next.updated_at = new Date().toISOString()
      const value = JSON.stringify(next)
      const bytes = this.startWrite(next, value)
      try {
        const revision = await retryTransient(() => this.kv.update(id, bytes, current.revision))
        this.observe(next, revision)
        return next
      } catch (err) {
        if ((err as { code?: number }).code !== WRONG_LAST_SEQUENCE) throw new RunStoreError(`cannot update run ${id}`, { cause: err })
        // A retried update whose first attempt landed: the stored value is ours.
        const now = await this.kv.get(id).catch(() => null)
        if (now && now.operation === 'PUT' && now.string() === value) { this.observe(next, now.revision); return next }
        if (attempt === 0) continue
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)))
      } finally { this.endWrite(id, bytes) }
    }
    throw new RunStoreError(`run ${id}: too many concurrent updates`)
  }

  /** Resolves with the run once `done(run)` holds, or with its latest state after `timeoutMs`. */
  async waitFor(id: string, done: (run: Run) => boolean, timeoutMs: number): Promise<Run | undefined> {
    let listener: ((run: Run) => void) | undefined
    let timer: NodeJS.Timeout | undefined
    const changed = new Promise<Run>((resolve) => {
      listener = (run: Run) => { if (done(run)) resolve(run) }
      this.events.on(id, listener)
    })
    try {
      const now = await this.current(id)
      if (!now || done(now.run) || timeoutMs <= 0) return now?.run
      const timedOut = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); timer.unref() })
      const hit = await Promise.race([changed, timedOut])
      return hit ?? (await this.get(id))?.run
    } finally {
      if (listener) this.events.off(id, listener)
      if (timer) clearTimeout(timer)
    }
  }

  /** Every change seen by this instance (its own writes and other instances'). */
  onChange(listener: (run: Run) => void): () => void {
    this.events.on('*', listener)
    return () => this.events.off('*', listener)
  }

  /** Runs matching `filter`, newest first (run-index.ts). */
  list(filter: RunFilter, limit: number): RunSummary[] { return this.index.list(filter, limit) }
  summary(id: string): RunSummary | undefined { return this.index.summary(id) }
  pendingRuns(): IterableIterator<RunSummary> { return this.index.pendingRuns() }
  pendingCount(requester?: string): number { return this.index.pendingCount(requester) }
  get unfinishedCount(): number { return this.index.unfinishedCount }
  expiredBy(now: number): RunSummary[] { return this.index.expiredBy(now) }
  approvedBefore(before: number): RunSummary[] { return this.index.approvedBefore(before) }
  overdue(now: number): RunSummary[] { return this.index.overdue(now) }

  stop(): void {
    this.stopWatch?.()
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try { return JSON.parse(new TextDecoder().decode(bytes)) } catch { return undefined }
}
