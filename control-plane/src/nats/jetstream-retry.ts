/**
 * Riding out JetStream's brief unavailability: when a stream's leader dies, a
 * cluster takes a few seconds to elect another, and meanwhile publishes get
 * "no responders" and API calls time out. Those errors are retried within a
 * budget; definite answers (wrong last sequence, not found) are not.
 */
export function isTransientJetStreamError(err: unknown): boolean {
  const e = err as { name?: string, code?: number | string, status?: number, cause?: unknown, message?: string }
  if (!e) return false
  if (['TimeoutError', 'JetStreamNotEnabled', 'NoRespondersError', 'RequestError', 'ClosedConnectionError'].includes(e.name ?? '')) return true
  if (e.status === 503 || e.code === 10008 || e.code === '503') return true
  if (/temporarily unavailable|no responders|timeout|no suitable peers|leader/i.test(e.message ?? '')) return true
  return e.cause !== undefined && e.cause !== err ? isTransientJetStreamError(e.cause) : false
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Calls `fn` again on transient errors until it succeeds or `budgetMs` is spent. */
export async function retryTransient<T>(fn: () => Promise<T>, budgetMs = 20_000): Promise<T> {
  const deadline = Date.now() + budgetMs
  for (let attempt = 0; ; attempt++) {
    try { return await fn() } catch (err) {
      if (!isTransientJetStreamError(err) || Date.now() > deadline) throw err
      await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)))
    }
  }
}
