/**
 * Kernel records carry seconds since boot (`[ 1535673.491531]`); a person
 * wants the wall-clock time. The runner reading its own kernel's buffer knows
 * when that kernel booted, so it adds the instant to each record (`at`). Like
 * `dmesg -T`, this is off by the time the host spent suspended since boot (the
 * kernel's clock stops then); servers rarely suspend. Records read from a
 * kernel-log file come from some other boot and get no `at`.
 */
import { uptime } from 'node:os'
import type { DmesgEntry } from './dmesg.js'

/** When this host's kernel booted, in epoch milliseconds. */
export function bootTimeMs(now = Date.now()): number {
  return now - uptime() * 1000
}

/** `entries` with the wall-clock instant (ISO) of each one that carries seconds since boot. */
export function withWallClock(entries: DmesgEntry[], bootAtMs: number): DmesgEntry[] {
  return entries.map((e) => {
    const since = typeof e.timestamp === 'number' ? e.timestamp : e.sinceBoot
    return since === undefined ? e : { ...e, at: new Date(bootAtMs + since * 1000).toISOString() }
  })
}
