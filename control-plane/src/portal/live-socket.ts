/**
 * `/ui/live`: a WebSocket for the signed-in operator's open page. A run page
 * hears its run's status changes, the inbox hears when what waits changes —
 * from whichever replica made the change (the run store watches the bucket).
 * Read-only: the socket accepts subscriptions and nothing else.
 *
 * A socket lives no longer than its session: it closes when the session is
 * signed out on any replica and when the session's time is up.
 */
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { z } from 'zod'
import type { PortalSessions } from './session-store.js'

const Subscribe = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), run_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict(),
  z.object({ type: z.literal('inbox') }).strict(),
])

/** Close codes a page can tell apart (4000–4999 are the application's). */
export const LIVE_CLOSE = { sessionEnded: 4401 } as const

export default async function liveSocket(app: FastifyInstance, opts: { allowedOrigins: ReadonlySet<string>, sessions: PortalSessions }) {
  const { store } = app.writ
  const { sessions } = opts

  app.get('/live', {
    websocket: true,
    // Another site must not open a socket with the operator's cookie.
    preValidation: async (req, reply) => {
      const origin = req.headers.origin
      const own = `${req.protocol}://${req.headers.host ?? ''}`
      if (origin !== undefined && origin !== own && !opts.allowedOrigins.has(origin)) return reply.code(403).send({ error: { code: 'WRIT_ERR_FORBIDDEN', message: 'cross-origin socket refused' } })
    },
  }, (socket: WebSocket, req) => {
    const session = req.portalSession
    if (!session) { socket.close(LIVE_CLOSE.sessionEnded, 'session ended'); return }
    const close = (code: number, why: string): void => { if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, why) }
    const endSession = sessions.onEnd(session.sid, () => close(LIVE_CLOSE.sessionEnded, 'session ended'))
    // (A timer cannot wait past 2^31 ms; a session longer than that has its socket closed then, and the page reconnects.)
    const timeUp = setTimeout(() => close(LIVE_CLOSE.sessionEnded, 'session ended'), Math.min(2 ** 31 - 1, Math.max(0, session.expiresAt - Date.now())))
    const runs = new Set<string>()
    let inbox = false
    const pending = new Map<string, boolean>()
    const send = (msg: unknown): void => { if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg)) }
    const stop = store.onChange((run) => {
      if (runs.has(run.id)) send({ type: 'run', run_id: run.id, status: run.status, status_reason: run.status_reason })
      if (inbox) {
        const waits = run.status === 'pending_approval'
        if (pending.get(run.id) !== waits && (waits || pending.has(run.id))) send({ type: 'inbox' })
        if (waits || pending.has(run.id)) pending.set(run.id, waits)
      }
    })
    socket.on('message', (raw) => {
      let json: unknown
      try { json = JSON.parse(raw.toString()) } catch { return }
      const m = Subscribe.safeParse(json)
      if (!m.success) return
      if (m.data.type === 'run' && runs.size < 16) runs.add(m.data.run_id)
      if (m.data.type === 'inbox') {
        inbox = true
        for (const r of store.list({ status: 'pending_approval' }, 10_000)) pending.set(r.id, true)
      }
      send({ type: 'subscribed' })
    })
    socket.on('close', () => {
      stop()
      endSession()
      clearTimeout(timeUp)
    })
  })
}
