/**
 * The freezes in force, in one key of the `WRIT_BRAKES` bucket. Every
 * instance watches the key and keeps the record in memory, so the check on
 * the request path is a lookup, and a freeze set on one replica is in force
 * on the others as soon as the watch delivers it (milliseconds). Changes are
 * revision-checked, so two operators freezing at once both land.
 */
import type { KV } from '@nats-io/kv'
import type { Logger } from 'pino'
import { retryTransient } from '../nats/index.js'
import { isRevisionConflict } from './brakes-bucket.js'
import { AGENTS_SCOPE, FreezeRecordSchema, type Freeze, type FreezeRecord } from './freeze-schemas.js'

const KEY = 'freeze'
const EMPTY: FreezeRecord = { v: 1, freezes: [] }
/** What an unreadable record stands for: every agent frozen since it was read, saying why. */
function unreadable(): FreezeRecord {
  return {
    v: 1,
    freezes: [{
      scope: AGENTS_SCOPE, by: 'control-plane', person: 'control-plane', at: new Date().toISOString(),
      reason: 'the stored freeze record is unreadable, so changes are refused as if frozen; an operator unfreezes (or freezes again) to write it anew',
    }],
  }
}

export class FreezeStore {
  private record: FreezeRecord = EMPTY
  private revision = 0
  private stopped = false
  private watcher: { stop(): void } | undefined
  private readonly listeners = new Set<(record: FreezeRecord) => void>()

  private constructor(private readonly kv: KV, private readonly log: Logger) {}

  /** Reads the record, then follows it; resolves once the record in force is known. */
  static async open(kv: KV, log: Logger): Promise<FreezeStore> {
    const store = new FreezeStore(kv, log)
    const first = await retryTransient(() => store.read())
    store.observe(first.record, first.revision)
    store.follow()
    return store
  }

  /** Every freeze in force, as this instance last saw the record. */
  get freezes(): readonly Freeze[] { return this.record.freezes }

  /** Called with the record whenever it changes (from any instance). */
  onChange(listener: (record: FreezeRecord) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * Applies `change` to the stored record, revision-checked (read again and
   * reapplied when another instance wrote first). `change` returns undefined
   * to write nothing. Resolves with the record as stored.
   */
  async update(change: (record: FreezeRecord) => FreezeRecord | undefined): Promise<FreezeRecord> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await retryTransient(() => this.read())
      const next = change(current.record)
      if (!next) { this.observe(current.record, current.revision); return current.record }
      try {
        const value = JSON.stringify(next)
        const revision = current.revision === 0 ? await this.kv.create(KEY, value) : await this.kv.update(KEY, value, current.revision)
        this.observe(next, revision)
        return next
      } catch (err) {
        if (!isRevisionConflict(err)) throw err
      }
    }
    throw new Error('the freeze record kept changing under 20 attempts to update it')
  }

  stop(): void {
    this.stopped = true
    this.watcher?.stop()
  }

  private async read(): Promise<{ record: FreezeRecord, revision: number }> {
    const e = await this.kv.get(KEY)
    if (!e || e.operation !== 'PUT') return { record: EMPTY, revision: e?.revision ?? 0 }
    return { record: this.parse(e.string()), revision: e.revision }
  }

  /**
   * A record that does not parse fails closed: every agent is frozen (the
   * switch may have been thrown and cannot be read), logged loudly, until an
   * operator freezes or unfreezes again, which writes a well-formed record.
   */
  private parse(text: string): FreezeRecord {
    let json: unknown
    try { json = JSON.parse(text) } catch { json = undefined }
    const parsed = FreezeRecordSchema.safeParse(json)
    if (parsed.success) return parsed.data
    this.log.error('the stored freeze record is malformed; every agent counts as frozen until an operator freezes or unfreezes again')
    return unreadable()
  }

  private observe(record: FreezeRecord, revision: number): void {
    if (revision <= this.revision && revision !== 0) return
    this.revision = revision
    const before = JSON.stringify(this.record)
    this.record = record
    if (JSON.stringify(record) !== before) for (const l of this.listeners) l(record)
  }

  private follow(): void {
    void (async () => {
      while (!this.stopped) {
        try {
          const it = await this.kv.watch({ key: KEY, ...(this.revision > 0 ? { resumeFromRevision: this.revision + 1 } : {}) })
          this.watcher = it
          if (this.stopped) { it.stop(); break }
          for await (const e of it) {
            this.observe(e.operation === 'PUT' ? this.parse(e.string()) : EMPTY, e.revision)
          }
        } catch (err) {
          if (!this.stopped) this.log.warn({ err }, 'freeze watch interrupted; resuming')
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, 250))
      }
    })()
  }
}
