/**
 * What the runner's journal remembers between entries, learned from each one
 * (appended or read back at start) and carried into a rotated file by its
 * `continued` entry: the run ids still inside their replay window, the runs
 * accepted but not finished, the uses of each standing grant while it can
 * still be valid, and the newest approver registry accepted.
 */
import type { JournalEntry } from '@writ/packs'

export interface MemoryBounds {
  /** How far apart the runner's and the control plane's clocks may be. */
  clockSkewMs: number
  /** A writ valid for longer is refused; an entry without its expiry is remembered this long. */
  maxWritLifetimeMs: number
}

/** The `continued` entry's data that carries the memory into a new file. */
export interface CarriedMemory {
  replay: Record<string, number>, open: Record<string, string>, registry?: Record<string, unknown>, grants?: Record<string, { used: number, until: number }>
}

export class JournalMemory {
  /** Run id → until when a writ with it could still be valid. */
  private readonly seen = new Map<string, number>()
  /** Accepted runs not yet finished: run id → action. */
  private readonly open = new Map<string, string>()
  /** Writs accepted under each standing grant: grant id → count and until when it matters (the grant's expiry plus skew). */
  private readonly grants = new Map<string, { used: number, until: number }>()
  private registry_: Record<string, unknown> | undefined

  constructor(private readonly bounds: MemoryBounds) {}

  /** Replay window, open runs, grant uses and registry, from one entry (read back or just appended). */
  learn(e: Pick<JournalEntry, 'type' | 'run_id' | 'data' | 'at'>, now: number): void {
    if (e.type === 'continued') {
      for (const [runId, until] of Object.entries(e.data.replay as Record<string, number> ?? {})) if (until > now) this.seen.set(runId, until)
      for (const [runId, action] of Object.entries(e.data.open as Record<string, string> ?? {})) this.open.set(runId, action)
      if (typeof e.data.registry === 'object' && e.data.registry !== null) this.registry_ = e.data.registry as Record<string, unknown>
      for (const [id, g] of Object.entries(e.data.grants as Record<string, { used: number, until: number }> ?? {})) {
        if (g.until > now) this.grants.set(id, { used: g.used, until: g.until })
      }
      return
    }
    // Appended only for a registry newer than any before, so the last one is the newest.
    if (e.type === 'registry') this.registry_ = e.data
    if (e.type === 'accepted' || e.type === 'refused' || e.type === 'started') {
      if (e.data.unverified !== true) {
        const until = this.replayUntil(e)
        if (until > now) this.seen.set(e.run_id, Math.max(until, this.seen.get(e.run_id) ?? 0))
      }
    }
    if (e.type === 'accepted') this.open.set(e.run_id, String(e.data.action ?? ''))
    if (e.type === 'accepted' && typeof e.data.grant === 'string') {
      const until = Date.parse(String(e.data.grant_expires_at)) + this.bounds.clockSkewMs
      const g = this.grants.get(e.data.grant)
      this.grants.set(e.data.grant, { used: (g?.used ?? 0) + 1, until: Number.isFinite(until) ? until : now + this.bounds.maxWritLifetimeMs })
    }
    if (e.type === 'finished') this.open.delete(e.run_id)
  }

  private replayUntil(e: Pick<JournalEntry, 'data' | 'at'>): number {
    const expires = typeof e.data.expires_at === 'string' ? Date.parse(e.data.expires_at) : Number.NaN
    const base = Number.isFinite(expires) ? expires : Date.parse(e.at) + this.bounds.maxWritLifetimeMs
    return base + this.bounds.clockSkewMs
  }

  /** Whether a writ with this run id was received while it could still be valid. */
  has(runId: string, now: number): boolean {
    const until = this.seen.get(runId)
    if (until === undefined) return false
    if (until > now) return true
    this.seen.delete(runId)
    return false
  }

  grantUses(grantId: string): number { return this.grants.get(grantId)?.used ?? 0 }

  get replayWindow(): number { return this.seen.size }

  get registry(): Record<string, unknown> | undefined { return this.registry_ }

  unfinished(): Array<{ runId: string, action: string }> { return [...this.open].map(([runId, action]) => ({ runId, action })) }

  /** What a new file's `continued` entry carries: everything still needed at `now` (what has lapsed is dropped first). */
  carried(now: number): CarriedMemory {
    for (const [runId, until] of this.seen) if (until <= now) this.seen.delete(runId)
    for (const [id, g] of this.grants) if (g.until <= now) this.grants.delete(id)
    return {
      replay: Object.fromEntries(this.seen), open: Object.fromEntries(this.open),
      ...(this.registry_ ? { registry: this.registry_ } : {}),
      ...(this.grants.size > 0 ? { grants: Object.fromEntries(this.grants) } : {}),
    }
  }
}
