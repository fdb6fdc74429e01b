/**
 * Logging for refusals anyone on a runner's subject could provoke (forged,
 * malformed, replayed input): one line per refusal code per interval, with
 * the count of those not shown, so a flood cannot fill the log.
 */
import type { Logger } from 'pino'

export function throttledRefusalLog(log: Logger, intervalMs = 10_000): (code: string, runId: string, message: string) => void {
  const logged = new Map<string, { at: number, suppressed: number }>()
  return (code, runId, message) => {
    const now = Date.now()
    const last = logged.get(code)
    if (last && now - last.at < intervalMs) { last.suppressed++; return }
    log.warn({ runId, code, suppressed: last?.suppressed ?? 0 }, `writ refused: ${message}`)
    logged.set(code, { at: now, suppressed: 0 })
  }
}
