/**
 * The runner's local journal: append-only JSON lines, each entry holding the
 * hash of the previous one, fsynced before the runner acts on it. It is how a
 * redelivered writ is recognised and never run twice, across restarts.
 */
import { createHash } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
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
      }
    }
    return j
  }

  has(runId: string): boolean { return this.seen.has(runId) }

  get size(): number { return this.seq }

  /**
   * Appends and fsyncs one entry; returns it. An entry whose `data.unverified`
   * is true (a writ whose signature did not verify) does not burn its run id.
   */
  append(type: JournalEntryType, runId: string, data: Record<string, unknown> = {}): JournalEntry {
    const body = { seq: this.seq + 1, at: new Date().toISOString(), type, run_id: runId, data, prev: this.last }
    const entry: JournalEntry = { ...body, hash: entryHash(body) }
    const line = `${JSON.stringify(entry)}\n`
    writeSync(this.fd, line)
    fsyncSync(this.fd)
    this.seq = entry.seq
    this.last = entry.hash
    if (data.unverified !== true) this.seen.add(runId)
    return entry
  }

  close(): void {
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1 }
  }
}
