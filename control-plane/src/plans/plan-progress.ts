/**
 * A plan's progress as its log tells it: which targets were dispatched, with
 * which signed statement, and what each one's outcome was, grouped by
 * identical output. Folded from the log's entries in order; the first
 * outcome recorded for a target stands (a redelivered result, or a runner's
 * refusal result after the control plane recorded the refusal it answered,
 * adds nothing).
 */
import type { PlanStatement } from '@writ/packs/protocol'
import type { DispatchEntry, LogEntry, TargetResult } from './plan-schemas.js'

export interface ResultGroup { key: string, status: TargetResult['status'], exit_code: number | null | undefined, sample: string | undefined, positions: number[] }

/** Outcomes that count against a plan's error budget. */
export const FAILED = new Set<TargetResult['status']>(['failed', 'timed_out', 'refused_by_runner', 'node_offline', 'lost'])

export class PlanProgress {
  readonly dispatched = new Map<number, number>()
  readonly results = new Map<number, TargetResult>()
  readonly groups = new Map<string, ResultGroup>()
  /** The last dispatch entry's stream sequence: the next dispatch must follow exactly it. */
  lastDispatchSeq = 0
  lastSeq = 0
  failures = 0
  /** The statement the latest dispatch carried, with its signature. */
  signed: { statement: PlanStatement, sig: string, key_id: string } | undefined
  private readonly changeListeners = new Set<() => void>()

  apply(entry: LogEntry, seq: number): void {
    if (seq <= this.lastSeq) return
    this.lastSeq = seq
    if (entry.kind === 'dispatch') {
      this.lastDispatchSeq = seq
      this.signed = { statement: entry.statement, sig: entry.sig, key_id: entry.key_id }
      const at = Date.parse(entry.at)
      for (const p of entry.positions) if (!this.dispatched.has(p)) this.dispatched.set(p, at)
    } else {
      for (const r of entry.results) this.record(r)
    }
    for (const l of this.changeListeners) l()
  }

  private record(r: TargetResult): void {
    if (this.results.has(r.p)) {
      const g = this.groups.get(r.group)
      if (g && g.sample === undefined && r.sample !== undefined) g.sample = r.sample
      return
    }
    this.results.set(r.p, r)
    if (FAILED.has(r.status)) this.failures++
    let g = this.groups.get(r.group)
    if (!g) this.groups.set(r.group, g = { key: r.group, status: r.status, exit_code: r.exit_code, sample: r.sample, positions: [] })
    else if (g.sample === undefined && r.sample !== undefined) g.sample = r.sample
    g.positions.push(r.p)
  }

  /** Dispatched targets with no outcome yet. */
  inFlight(): number[] {
    const out: number[] = []
    for (const p of this.dispatched.keys()) if (!this.results.has(p)) out.push(p)
    return out
  }

  /** Calls `listener` after every applied entry; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }
}

/** `[0,1,2,5,7,8]` → `"0-2,5,7-8"`: positions in audit events stay short. */
export function ranges(positions: readonly number[]): string {
  const sorted = [...positions].sort((a, b) => a - b)
  const out: string[] = []
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return out.join(',')
}

/** The inverse of `ranges`. */
export function parseRanges(text: string): number[] {
  if (text === '') return []
  const out: number[] = []
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined]
    for (let p = a; p <= (b ?? a); p++) out.push(p)
  }
  return out
}

export type { DispatchEntry }
