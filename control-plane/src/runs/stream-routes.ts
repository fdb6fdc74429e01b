/**
 * WebSocket `/v1/stream`: live output of runs the caller may see, their status
 * changes, and audit events filtered the same way as `GET /v1/audit`.
 *
 * Client → server: `{"type":"subscribe","run_id":…}`, `{"type":"unsubscribe","run_id":…}`,
 * `{"type":"subscribe_audit"}`. Server → client: `output`, `run`, `audit`, `subscribed`, `error`.
 */
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { z } from 'zod'
import { principalOf } from '../auth/index.js'
import { auditVisible } from '../audit/index.js'
import { isTerminal } from './run-record.js'

export const StreamRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('subscribe'), run_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict(),
  z.object({ type: z.literal('unsubscribe'), run_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict(),
  z.object({ type: z.literal('subscribe_audit') }).strict(),
])

const MAX_RUNS_PER_SOCKET = 64

export default async function streamRoutes(app: FastifyInstance) {
  const { runs, outputs, store } = app.writ

  app.get('/stream', { websocket: true }, (socket: WebSocket, req) => {
    const principal = principalOf(req)
    const stops = new Map<string, () => void>()
    const send = (msg: unknown): void => { if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg)) }
    const fail = (code: string, message: string): void => send({ type: 'error', error: { code, message } })

    const stopRunFeed = store.onChange((run) => {
      if (stops.has(run.id)) send({ type: 'run', run: { id: run.id, status: run.status, status_reason: run.status_reason, ...(isTerminal(run.status) && run.result ? { exit_code: run.result.exit_code } : {}) } })
    })

    socket.on('message', (raw) => {
      let json: unknown
      try { json = JSON.parse(raw.toString()) } catch { return fail('WRIT_ERR_MALFORMED_JSON', 'frames are JSON objects') }
      const parsed = StreamRequestSchema.safeParse(json)
      if (!parsed.success) return fail('WRIT_ERR_VALIDATION', parsed.error.issues.map((i) => i.message).join('; '))
      const m = parsed.data
      if (m.type === 'subscribe_audit') {
        if (stops.has('audit')) return
        // A placeholder until the feed is live, so a repeat or a close in between is handled.
        let closed = false
        const placeholder = (): void => { closed = true }
        stops.set('audit', placeholder)
        void app.writ.onAudit((e) => { if (auditVisible(principal, e, store)) send({ type: 'audit', event: e }) }).then((stop) => {
          if (closed) return stop()
          stops.set('audit', stop)
          send({ type: 'subscribed', audit: true })
        }, (err: Error) => {
          if (stops.get('audit') === placeholder) stops.delete('audit')
          fail('WRIT_ERR_UNAVAILABLE', `cannot follow the audit stream: ${err.message}`)
        })
        return
      }
      if (m.type === 'unsubscribe') { stops.get(m.run_id)?.(); stops.delete(m.run_id); return }
      if (stops.size >= MAX_RUNS_PER_SOCKET) return fail('WRIT_ERR_RATE_LIMITED', `at most ${MAX_RUNS_PER_SOCKET} subscriptions per connection`)
      void runs.get(principal, m.run_id).then((run) => {
        if (stops.has(run.id)) return
        // Follow first, then replay what is buffered, skipping what the follower already sent.
        let sentUpTo = -1
        const stop = outputs.follow(run.id, (chunk) => { if (chunk.seq > sentUpTo) { sentUpTo = chunk.seq; send({ type: 'output', chunk }) } })
        stops.set(run.id, stop)
        send({ type: 'subscribed', run_id: run.id, status: run.status })
        for (const chunk of outputs.since(run.id).chunks) if (chunk.seq > sentUpTo) { sentUpTo = chunk.seq; send({ type: 'output', chunk }) }
        if (isTerminal(run.status)) send({ type: 'run', run: { id: run.id, status: run.status, status_reason: run.status_reason, ...(run.result ? { exit_code: run.result.exit_code } : {}) } })
      }, (err: Error & { code?: string }) => fail(err.code ?? 'WRIT_ERR_INTERNAL', err.message))
    })

    socket.on('close', () => {
      stopRunFeed()
      for (const stop of stops.values()) stop()
      stops.clear()
    })
  })
}
