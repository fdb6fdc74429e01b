/**
 * Kicks a map: ONE 4 KiB O_DIRECT read of `<device-dir>/<map>` in a child
 * `dd`, with a deadline. The read goes to /dev/null; nothing is ever written
 * to a device. At most one read per map is outstanding: a read that outlived
 * its deadline (D state) keeps the map "in flight" until its process exits.
 * Maps whose kicks keep failing are kicked less and less often.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { startBoundedChild } from './bounded-child.js'

/** What one kick read did. */
export type KickReadResult =
  | { status: 'completed', ms: number }
  | { status: 'failed', ms: number, reason: string }
  | { status: 'hung', ms: number, pid: number | undefined }

/** Why a map is not kicked now, or null when it may be. */
export type KickRefusal = { reason: 'in_flight', sinceMs: number, pid: number | undefined } | { reason: 'backoff', untilMs: number } | null

interface MapKickState {
  inFlight?: { pid: number | undefined, since: number, hung: boolean }
  consecutiveFailures: number
  nextKickAt: number
}

export interface MapKickerOptions {
  deviceDir: string
  ddBin: string
  timeoutMs: number
  /** First back-off step; doubles with every further failure. */
  backoffBaseMs: number
  maxBackoffMs: number
  /** Called when a hung read's process finally exits. */
  onHungReadExited?: (map: string, hungForMs: number) => void
  now?: () => number
  /** Aborted at shutdown: outstanding reads are given up at once. */
  signal?: AbortSignal
}

export class MapKicker {
  private readonly states = new Map<string, MapKickState>()
  private readonly now: () => number

  constructor(private readonly options: MapKickerOptions) {
    this.now = options.now ?? Date.now
  }

  /** Whether `map` may be kicked now. */
  refusal(map: string): KickRefusal {
    const s = this.states.get(map)
    if (!s) return null
    if (s.inFlight) return { reason: 'in_flight', sinceMs: this.now() - s.inFlight.since, pid: s.inFlight.pid }
    if (s.nextKickAt > this.now()) return { reason: 'backoff', untilMs: s.nextKickAt - this.now() }
    return null
  }

  /** Maps whose read is still outstanding past its deadline. */
  hungMaps(): string[] {
    return [...this.states].filter(([, s]) => s.inFlight?.hung === true).map(([m]) => m)
  }

  /**
   * Reads 4 KiB from the map with O_DIRECT. Settles when the read ends or at
   * the deadline — never later, even if the process cannot be killed.
   * @throws {Error} if called for a map that {@link refusal} refuses.
   */
  async kick(map: string): Promise<KickReadResult> {
    const refused = this.refusal(map)
    if (refused?.reason === 'in_flight') throw new Error(`kick of ${map} refused: a read is already in flight`)
    const state = this.stateOf(map)
    const started = this.now()
    // Map names come from multipathd; one that could leave the device directory is never read.
    if (map === '.' || map === '..' || /[/\0]/.test(map)) return { status: 'failed', ms: 0, reason: `map name "${map}" is not a plain device name` }
    const device = join(this.options.deviceDir, map)
    try { await stat(device) } catch (e) {
      return { status: 'failed', ms: this.now() - started, reason: `${device}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }
    }
    const child = startBoundedChild(this.options.ddBin, [`if=${device}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct'], { timeoutMs: this.options.timeoutMs, maxOutputBytes: 4096, ...(this.options.signal ? { signal: this.options.signal } : {}) })
    state.inFlight = { pid: child.pid, since: started, hung: false }
    const inFlight = state.inFlight
    void child.exited.then(() => {
      if (state.inFlight !== inFlight) return
      delete state.inFlight
      if (inFlight.hung) this.options.onHungReadExited?.(map, this.now() - inFlight.since)
    })
    const outcome = await child.outcome
    const ms = this.now() - started
    switch (outcome.kind) {
      case 'spawn_failed':
        delete state.inFlight
        return { status: 'failed', ms, reason: `${this.options.ddBin} could not start: ${outcome.error.code ?? outcome.error.message}` }
      case 'timed_out':
        if (this.options.signal?.aborted) return { status: 'failed', ms, reason: 'abandoned at shutdown' }
        inFlight.hung = true
        return { status: 'hung', ms, pid: outcome.pid }
      case 'exited':
        if (outcome.code === 0 && /(^|\n)1\+0 records in/.test(outcome.stderr)) return { status: 'completed', ms }
        return { status: 'failed', ms, reason: `dd exited ${outcome.code ?? outcome.signal}: ${outcome.stderr.trim().split('\n')[0] ?? ''}`.slice(0, 300) }
    }
  }

  /** Records whether the kick helped; failures push the next kick of this map out exponentially. */
  settle(map: string, succeeded: boolean): void {
    const state = this.stateOf(map)
    if (succeeded) {
      state.consecutiveFailures = 0
      state.nextKickAt = 0
      return
    }
    state.consecutiveFailures++
    const delay = Math.min(this.options.backoffBaseMs * 2 ** (state.consecutiveFailures - 1), this.options.maxBackoffMs)
    state.nextKickAt = this.now() + delay
  }

  /** Drops per-map state for maps that are gone, unless a read on them is still outstanding. */
  forgetExcept(present: Set<string>): void {
    for (const [map, s] of this.states) if (!present.has(map) && !s.inFlight) this.states.delete(map)
  }

  private stateOf(map: string): MapKickState {
    let s = this.states.get(map)
    if (!s) { s = { consecutiveFailures: 0, nextKickAt: 0 }; this.states.set(map, s) }
    return s
  }
}
