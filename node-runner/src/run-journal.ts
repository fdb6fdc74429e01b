/**
 * The runner's local journal: append-only JSON lines, each entry holding the
 * hash of the previous one, fsynced before the runner acts on it. It is how a
 * redelivered writ is recognised and never run twice, across restarts.
 */
import { createHash } from 'node:crypto'
import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { canonicalJson } from '@writ/packs/protocol'

export type JournalEntryType = 'accepted' | 'refused' | 'finished' | 'started'

export interface JournalEntry {
  seq: number
  at: string
  type: JournalEntryType
  run_id: string
  data: Record<string, unknown>
  prev: string
  hash: string
}

export class JournalError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'JournalError' }
}

const GENESIS = '0'.repeat(64)

export function entryHash(e: Omit<JournalEntry, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(e)).digest('hex')
}

export class RunJournal {
  private fd: number
  private seq = 0
  private last = GENESIS
  private readonly seen = new Set<string>()
  /** Accepted runs with no `finished` entry yet: run id → action. */
  private readonly open_ = new Map<string, string>()
  private pending: string[] = []
  /** Whether an entry waiting in `pending` must be fdatasync'ed. */
  private pendingSync = false
  private waiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private flushing: Promise<void> | undefined

  private constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true })
    this.fd = openSync(path, 'a')
  }

  /** Opens (or creates) the journal, verifying the chain and learning every run id seen. */
  static open(path: string): RunJournal {
    const j = new RunJournal(path)
    if (existsSync(path)) {
      const lines = readFileSync(path, 'utf8').split('\n')
      // A crash mid-append can leave one partial last line; it was never acted on.
      if (lines.at(-1) !== '') lines.pop()
      for (const [i, line] of lines.entries()) {
        if (line === '') continue
        let e: JournalEntry
        try { e = JSON.parse(line) as JournalEntry } catch (err) {
          if (i === lines.length - 1) break
          throw new JournalError(`journal ${path} line ${i + 1} is not JSON`, { cause: err })
        }
        const { hash, ...rest } = e
        if (e.prev !== j.last || entryHash(rest) !== hash) throw new JournalError(`journal ${path} chain breaks at line ${i + 1} (seq ${e.seq})`)
        j.last = hash
        j.seq = e.seq
        if (e.data.unverified !== true) j.seen.add(e.run_id)
        if (e.type === 'accepted') j.open_.set(e.run_id, String(e.data.action ?? ''))
        if (e.type === 'finished') j.open_.delete(e.run_id)
      }
    }
    return j
  }

  has(runId: string): boolean { return this.seen.has(runId) }

  get size(): number { return this.seq }

  /** Runs accepted before the last stop whose result was never recorded as published. */
  unfinished(): Array<{ runId: string, action: string }> { return [...this.open_].map(([runId, action]) => ({ runId, action })) }

  /**
   * Appends one entry. Its place in the chain and its run id are taken at
   * once (so a redelivery arriving a moment later is already a replay); the
   * returned promise resolves when the line is written and, except for a
   * `finished` entry (below), fdatasync'ed.
   * Entries appended while a sync is under way share the next write and sync. An entry
   * whose `data.unverified` is true (a writ whose signature did not verify)
   * does not burn its run id.
   *
   * A `finished` entry is written but not synced on its own (the next sync
   * carries it): losing it to a power cut only makes the restarted runner
   * report the run's outcome as unknown, which the result already published
   * under the same message id supersedes.
   */
  append(type: JournalEntryType, runId: string, data: Record<string, unknown> = {}): Promise<void> {
    if (this.fd < 0) return Promise.reject(new JournalError(`journal ${this.path} is closed`))
    const body = { seq: this.seq + 1, at: new Date().toISOString(), type, run_id: runId, data, prev: this.last }
    const entry: JournalEntry = { ...body, hash: entryHash(body) }
    this.seq = entry.seq
    this.last = entry.hash
    if (data.unverified !== true) this.seen.add(runId)
    if (type === 'accepted') this.open_.set(runId, String(data.action ?? ''))
    if (type === 'finished') this.open_.delete(runId)
    this.pending.push(`${JSON.stringify(entry)}\n`)
    if (type !== 'finished') this.pendingSync = true
    const durable = new Promise<void>((resolve, reject) => { this.waiters.push({ resolve, reject }) })
    this.flushing ??= Promise.resolve().then(() => this.flush())
    return durable
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const lines = this.pending
      const waiters = this.waiters
      const sync = this.pendingSync
      this.pending = []
      this.waiters = []
      this.pendingSync = false
      try {
        // The write lands in the page cache at once; only the sync waits on the disk (off the event loop).
        writeSync(this.fd, lines.join(''))
        if (sync) await new Promise<void>((res, rej) => fdatasync(this.fd, (e) => (e ? rej(e) : res())))
        for (const w of waiters) w.resolve()
      } catch (e) {
        const err = new JournalError(`journal ${this.path} write failed: ${(e as Error).message}`, { cause: e })
        for (const w of waiters) w.reject(err)
      }
    }
    this.flushing = undefined
  }

  /** Waits for pending entries to reach the disk, then closes the file. */
  async close(): Promise<void> {
    if (this.flushing) await this.flushing
    // A clean stop leaves every entry on disk, `finished` ones included.
    if (this.fd < 0) return
    const fd = this.fd
    this.fd = -1
    try { fdatasyncSync(fd) } finally { closeSync(fd) }
  }
}
