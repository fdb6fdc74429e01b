/**
 * The runner journal's on-disk format (JSON lines, one hash-chained entry a
 * line) and how a journal witnesses the audit chain: every writ carries the
 * hash of its run's `run.requested` audit event and the runner journals it,
 * so `writ audit verify --witness <journal>` can prove each such hash is on
 * the chain. Shared here because the runner writes it and the CLI reads it.
 */
import { z } from 'zod'
import { GENESIS_HASH, checkLink } from './hash-chain.js'

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/)

export const JournalEntrySchema = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  /**
   * `accepted`, `refused`, `finished`, `started`; `refusals` (a summary of
   * repeated or unverifiable input, counted rather than written one by one);
   * `continued` (the first entry of a file after rotation: it carries the run
   * ids that still need replay protection, the newest approver registry
   * accepted, and links to the previous file); `registry` (an approver
   * registry newer than any before was put in force: its serial, issue time,
   * digest and the signed registry, so a restart never takes an older one).
   */
  type: z.string().regex(/^[a-z_]{1,32}$/),
  run_id: z.string(),
  data: z.record(z.string(), z.unknown()),
  prev: Hex64,
  hash: Hex64,
}).strict()
export type JournalEntry = z.infer<typeof JournalEntrySchema>

/** One request hash a runner journal holds. */
export interface JournalWitness { runId: string, requestHash: string, at: string, source: string, line: number }

export type JournalRead =
  | { ok: true, entries: number, witnesses: JournalWitness[], firstSeq: number | null, lastSeq: number | null }
  | { ok: false, entries: number, line: number, message: string }

/**
 * Reads a journal file's text: checks its chain (a file that starts with a
 * `continued` entry links to a rotated predecessor, otherwise to genesis) and
 * collects the request hashes it witnessed. A partial last line (a crash
 * mid-append) is ignored, as the runner does.
 */
export function readJournal(text: string, source: string): JournalRead {
  const lines = text.split('\n')
  if (lines.at(-1) !== '') lines.pop()
  const witnesses: JournalWitness[] = []
  let previous: { seq: number, hash: string } | undefined
  let entries = 0
  let firstSeq: number | null = null
  for (const [i, line] of lines.entries()) {
    if (line === '') continue
    let json: unknown
    try { json = JSON.parse(line) } catch {
      if (i === lines.length - 1) break
      return { ok: false, entries, line: i + 1, message: 'not JSON' }
    }
    const parsed = JournalEntrySchema.safeParse(json)
    if (!parsed.success) return { ok: false, entries, line: i + 1, message: `not a journal entry: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    const e = parsed.data
    if (!previous && e.type !== 'continued' && e.prev !== GENESIS_HASH) return { ok: false, entries, line: i + 1, message: 'the first entry links to nothing (genesis expected)' }
    const link = checkLink(e, previous, 'journal entry')
    if (!link.ok) return { ok: false, entries, line: i + 1, message: link.message }
    previous = e
    firstSeq ??= e.seq
    entries++
    const hash = e.data.request_hash
    if (typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) witnesses.push({ runId: e.run_id, requestHash: hash, at: e.at, source, line: i + 1 })
  }
  return { ok: true, entries, witnesses, firstSeq, lastSeq: previous?.seq ?? null }
}
