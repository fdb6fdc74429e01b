/**
 * The errors the Nomad and Docker clients raise, and the capped reading of an
 * error body. An error's message is what an agent sees as the run's `error`
 * ("nomad: 404 alloc not found"), so it carries the API's own words and never
 * a header or a token.
 */

/** Bytes of an error body kept for the message; the rest is drained unread. */
export const ERROR_BODY_KEEP = 4096

export type ApiName = 'nomad' | 'docker'

/** The API answered with a 4xx/5xx status. */
export class ApiStatusError extends Error {
  constructor(readonly api: ApiName, readonly status: number, readonly detail: string, options?: ErrorOptions) {
    super(`${api}: ${status}${detail ? ` ${detail}` : ''}`, options)
    this.name = 'ApiStatusError'
  }
}

/** The API could not be reached or broke off mid-answer (refused, reset, bad address). */
export class ApiUnreachableError extends Error {
  constructor(readonly api: ApiName, detail: string, options?: ErrorOptions) {
    super(`${api}: ${detail}`, options)
    this.name = 'ApiUnreachableError'
  }
}

/** Reads at most `keep` bytes of a body as text and discards the rest. */
export async function readCappedText(body: AsyncIterable<Buffer>, keep = ERROR_BODY_KEEP): Promise<string> {
  const parts: Buffer[] = []
  let have = 0
  for await (const chunk of body) {
    if (have < keep) {
      parts.push(chunk.subarray(0, keep - have))
      have += Math.min(chunk.length, keep - have)
    }
  }
  return Buffer.concat(parts).toString('utf8')
}

/** One line of printable text for a message: control characters become spaces, length is bounded. */
export function oneLine(text: string, max = 512): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

/** A transport error as short text: its code (ECONNREFUSED, UND_ERR_SOCKET) and message. */
export function describeCause(e: unknown): string {
  const err = e as { code?: unknown, message?: unknown } | null
  const code = typeof err?.code === 'string' ? err.code : undefined
  const msg = typeof err?.message === 'string' ? oneLine(err.message, 200) : String(e)
  return code && !msg.includes(code) ? `${code} ${msg}` : msg
}

/** An exception as one line: its class and message (a thrown non-Error as text). */
export function describeError(e: unknown): string {
  try {
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 512)
  } catch {
    // An error whose message or toString throws still ends as text.
    return 'an exception that cannot be described'
  }
}
