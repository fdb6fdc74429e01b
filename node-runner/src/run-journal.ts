/**
 * The runner's local journal: append-only JSON lines, each entry holding the
 * hash of the previous one, fsynced before the runner acts on it. It is how a
 * redelivered writ is recognised and never run twice, across restarts, and
 * it witnesses the audit chain (each accepted writ's request hash).
 *
 * Bounded: a run id only needs remembering until its writ can no longer be
 * valid (expiry plus clock skew), so once the file holds `rotateEntries`
 * entries it is rotated — renamed `<journal>.<last seq>` (kept for audit
 * verification, the newest `keepRotated` of them) — and the new file opens
 * with a `continued` entry linking to the old one and carrying the run ids
 * still inside their replay window. A start reads one bounded file.
 *
 * It also keeps the newest approver registry the runner accepted (a
 * `registry` entry each time a newer one is put in force, carried over by
 * `continued`), so a registry rolled back on disk is refused after a restart.
 *
 * Input that is malformed, unverifiable or a repeat is counted and written
 * as one `refusals` summary entry per interval, not fsynced line by line, so
 * a flood of forged messages cannot turn into a flood of disk syncs.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { GENESIS_HASH, checkLink, sealLink, type JournalEntry } from '@writ/packs'
// Types only: the approvers module loads only on a runner configured with a registry.
import type { AcceptedRegistry } from '@writ/packs/approvers'
import { JournalMemory } from './journal-memory.js'

export type JournalEntryType = 'accepted' | 'refused' | 'finished' | 'started' | 'refusals' | 'continued' | 'registry'
export type { JournalEntry }

export class JournalError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'JournalError' }
}

export interface RunJournalOptions {
  /** A run id is remembered until its writ's expiry plus this skew. */
  clockSkewMs: number
  /** The longest writ lifetime the runner accepts: the replay window of an entry without a recorded expiry. */
  maxWritLifetimeMs: number
  /** Rotate once the current file holds this many entries. */
  rotateEntries: number
  /** Rotated files kept next to the journal (older ones are removed). */
  keepRotated: number
  /** At most one `refusals` summary entry per this interval. */
  refusalSummaryMs: number
  now?: () => number
}

export const JOURNAL_DEFAULTS: RunJournalOptions = {
  clockSkewMs: 30_000, maxWritLifetimeMs: 3_600_000, rotateEntries: 100_000, keepRotated: 10, refusalSummaryMs: 10_000,
}

function isEntry(v: unknown): v is JournalEntry {
  const e = v as JournalEntry
  return typeof e === 'object' && e !== null && Number.isInteger(e.seq) && typeof e.at === 'string' && typeof e.type === 'string'
    && typeof e.run_id === 'string' && typeof e.data === 'object' && e.data !== null && typeof e.prev === 'string' && typeof e.hash === 'string'
}

/** How many run ids a `refusals` summary names, at most. */
const SUMMARY_SAMPLE = 20

export class RunJournal {
  private fd: number
  private seq = 0
  private last = GENESIS_HASH
  /** Entries in the current file. */
  private fileEntries = 0
  /** Replay window, open runs, grant uses and the newest registry (journal-memory.ts). */
  private readonly memory: JournalMemory
  private pending: string[] = []
  /** Whether an entry waiting in `pending` must be fdatasync'ed. */
  private pendingSync = false
  private waiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private flushing: Promise<void> | undefined
  private refusals: { from: string, counts: Record<string, number>, runIds: string[] } | undefined
  private summaryTimer: NodeJS.Timeout | undefined
  private readonly now: () => number
  /** Set when a rotation failed; the journal keeps appending to the current file. */
  rotateFailed: Error | undefined

  private constructor(readonly path: string, private readonly opts: RunJournalOptions) {
    mkdirSync(dirname(path), { recursive: true })
    this.fd = openSync(path, 'a')
    this.now = opts.now ?? Date.now
    this.memory = new JournalMemory(opts)
  }

  /** Opens (or creates) the journal, verifying the chain and learning the run ids still inside their replay window. */
  static open(path: string, options: Partial<RunJournalOptions> = {}): RunJournal {
    const j = new RunJournal(path, { ...JOURNAL_DEFAULTS, ...options })
    if (existsSync(path)) j.load(readFileSync(path, 'utf8'))
    // A journal left larger than the bound (by an older runner) is rotated at once.
    if (j.fileEntries >= j.opts.rotateEntries) j.rotate()
    return j
  }

  private load(text: string): void {
    const lines = text.split('\n')
    // A crash mid-append can leave one partial last line; it was never acted on.
    if (lines.at(-1) !== '') lines.pop()
    const now = this.now()
    let previous: { seq: number, hash: string } | undefined
    for (const [i, line] of lines.entries()) {
      if (line === '') continue
      let json: unknown
      try { json = JSON.parse(line) } catch (err) {
        if (i === lines.length - 1) break
        throw new JournalError(`journal ${this.path} line ${i + 1} is not JSON`, { cause: err })
      }
      // A shape check, not a schema parse: a start may read a long legacy journal once.
      if (!isEntry(json)) throw new JournalError(`journal ${this.path} line ${i + 1} is not a journal entry`)
      const e = json
      // The first entry of a rotated-into file links to the previous file, which is not read here.
      const linked = previous ?? (e.type === 'continued' ? undefined : { seq: 0, hash: GENESIS_HASH })
      const link = checkLink(e, linked, 'journal entry')
      if (!link.ok) throw new JournalError(`journal ${this.path} chain breaks at line ${i + 1} (seq ${e.seq}): ${link.message}`)
      previous = e
      this.last = e.hash
      this.seq = e.seq
      this.fileEntries++
      this.memory.learn(e, now)
    }
  }

  /** Whether a writ with this run id was received while it could still be valid. */
  has(runId: string): boolean { return this.memory.has(runId, this.now()) }

  /** How many writs this runner accepted under a standing grant (across restarts and rotations, while the grant can still be valid). */
  grantUses(grantId: string): number { return this.memory.grantUses(grantId) }

  /** Sequence of the last entry (across rotations). */
  get size(): number { return this.seq }

  /** Run ids currently remembered for replay protection. */
  get replayWindow(): number { return this.memory.replayWindow }

  /** What the journal holds of the newest approver registry this runner accepted (across restarts and rotations), unparsed. */
  get approverRegistry(): Record<string, unknown> | undefined { return this.memory.registry }

  /** Records a newly accepted approver registry; resolves once it is on disk. */
  recordRegistry(accepted: AcceptedRegistry): Promise<void> {
    return this.append('registry', '', { ...accepted })
  }

  /** Runs accepted before the last stop whose result was never recorded as published. */
  unfinished(): Array<{ runId: string, action: string }> { return this.memory.unfinished() }

  /**
   * Appends one entry. Its place in the chain and its run id are taken at
   * once (so a redelivery arriving a moment later is already a replay); the
   * returned promise resolves when the line is written and, except for
   * `finished` and `refusals` entries (below), fdatasync'ed. Entries appended
   * while a sync is under way share the next write and sync. An entry whose
   * `data.unverified` is true (a writ whose signature did not verify) does
   * not burn its run id; `data.expires_at` (the writ's) bounds how long it
   * is remembered.
   *
   * A `finished` entry is written but not synced on its own (the next sync
   * carries it): losing it to a power cut only makes the restarted runner
   * report the run's outcome as unknown, which the result already published
   * under the same message id supersedes.
   */
  append(type: JournalEntryType, runId: string, data: Record<string, unknown> = {}): Promise<void> {
    if (this.fd < 0) return Promise.reject(new JournalError(`journal ${this.path} is closed`))
    const entry = sealLink({ seq: this.seq + 1, at: new Date(this.now()).toISOString(), type, run_id: runId, data, prev: this.last })
    this.seq = entry.seq
    this.last = entry.hash
    this.fileEntries++
    this.memory.learn(entry, this.now())
    this.pending.push(`${JSON.stringify(entry)}\n`)
    if (type !== 'finished' && type !== 'refusals') this.pendingSync = true
    const durable = new Promise<void>((resolve, reject) => { this.waiters.push({ resolve, reject }) })
    this.flushing ??= Promise.resolve().then(() => this.flush())
    return durable
  }

  /**
   * Counts a refusal that is not worth a line of its own: input that is
   * malformed or not signed by a trusted key, or a writ already on record.
   * Written as one `refusals` entry per `refusalSummaryMs`.
   */
  countRefusal(code: string, runId: string): void {
    const r = this.refusals ??= { from: new Date(this.now()).toISOString(), counts: {}, runIds: [] }
    r.counts[code] = (r.counts[code] ?? 0) + 1
    if (runId && r.runIds.length < SUMMARY_SAMPLE && !r.runIds.includes(runId)) r.runIds.push(runId)
    this.summaryTimer ??= setTimeout(() => { this.summaryTimer = undefined; this.writeSummary() }, this.opts.refusalSummaryMs)
    this.summaryTimer.unref?.()
  }

  private writeSummary(): void {
    const r = this.refusals
    if (!r || this.fd < 0) return
    this.refusals = undefined
    const total = Object.values(r.counts).reduce((a, b) => a + b, 0)
    void this.append('refusals', '', { from: r.from, to: new Date(this.now()).toISOString(), total, counts: r.counts, run_ids: r.runIds }).catch(() => {})
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
      if (this.fileEntries >= this.opts.rotateEntries && this.pending.length === 0) {
        try { this.rotate() } catch (e) { this.rotateFailed = e as Error }
      }
    }
    this.flushing = undefined
  }

  /**
   * Renames the current file `<journal>.<last seq>` and starts a new one
   * whose first entry links to it and carries what replay protection and
   * restart recovery still need. Only between writes (no entry pending).
   */
  private rotate(): void {
    const now = this.now()
    const carried = this.memory.carried(now)
    fdatasyncSync(this.fd)
    closeSync(this.fd)
    this.fd = -1
    const rotated = `${this.path}.${this.seq}`
    renameSync(this.path, rotated)
    this.fd = openSync(this.path, 'a')
    this.fileEntries = 0
    const entry = sealLink({
      seq: this.seq + 1, at: new Date(now).toISOString(), type: 'continued', run_id: '',
      data: { previous: basename(rotated), ...carried },
      prev: this.last,
    })
    writeSync(this.fd, `${JSON.stringify(entry)}\n`)
    fdatasyncSync(this.fd)
    this.seq = entry.seq
    this.last = entry.hash
    this.fileEntries = 1
    this.pruneRotated()
  }

  private pruneRotated(): void {
    const prefix = `${basename(this.path)}.`
    const rotated = readdirSync(dirname(this.path))
      .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
      .sort((a, b) => Number(b.slice(prefix.length)) - Number(a.slice(prefix.length)))
    for (const f of rotated.slice(this.opts.keepRotated)) rmSync(join(dirname(this.path), f), { force: true })
  }

  /** Writes any pending refusal summary, waits for pending entries to reach the disk, then closes the file. */
  async close(): Promise<void> {
    if (this.summaryTimer) { clearTimeout(this.summaryTimer); this.summaryTimer = undefined }
    this.writeSummary()
    if (this.flushing) await this.flushing
    // A clean stop leaves every entry on disk, `finished` ones included.
    if (this.fd < 0) return
    const fd = this.fd
    this.fd = -1
    try { fdatasyncSync(fd) } finally { closeSync(fd) }
  }
}
