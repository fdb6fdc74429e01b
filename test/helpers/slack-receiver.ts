/**
 * A local stand-in for a Slack incoming webhook: records every POSTed body
 * and answers with the statuses a test scripts (500s, 429 with Retry-After)
 * before answering `ok` as Slack does.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SlackReceiver {
  url: string
  /** Bodies Slack accepted (answered 200), in order. */
  messages: Array<Record<string, any>>
  /** Every attempt, with the status it got. */
  attempts: Array<{ at: number, status: number }>
  /** Statuses to answer next, one per request, before answering 200. */
  script: Array<{ status: number, retryAfter?: number }>
  /** While true, every request is answered 503 (Slack is down). */
  down: boolean
  close(): Promise<void>
}

export async function startSlackReceiver(): Promise<SlackReceiver> {
  const r: SlackReceiver = { url: '', messages: [], attempts: [], script: [], down: false, close: async () => {} }
  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const next: { status: number, retryAfter?: number } | undefined = r.down ? { status: 503 } : r.script.shift()
      const status = next?.status ?? 200
      r.attempts.push({ at: Date.now(), status })
      if (status === 200) {
        r.messages.push(JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, any>)
        res.writeHead(200, { 'content-type': 'text/html' }).end('ok')
        return
      }
      res.writeHead(status, { 'content-type': 'text/plain', ...(next?.retryAfter !== undefined ? { 'retry-after': String(next.retryAfter) } : {}) }).end(status === 429 ? 'rate_limited' : 'internal_error')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`
  r.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  return r
}

/** The portal link in an approval message's "Review" button. */
export function reviewLink(message: Record<string, any>): string | undefined {
  for (const block of message.blocks ?? []) {
    for (const el of block.elements ?? []) if (el.type === 'button' && el.text?.text === 'Review') return el.url as string
  }
  return undefined
}
