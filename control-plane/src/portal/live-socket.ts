/**
 * `/ui/live`: a WebSocket for the signed-in operator's open page. A run page
 * hears its run's status changes, the inbox hears when what waits changes —
 * from whichever replica made the change (the run store watches the bucket).
 * Read-only: the socket accepts subscriptions and nothing else.
 *
 * A socket lives no longer than its session: it closes when the session is
 * signed out on any replica and when the session's time is up. What one
 * connection may hold is bounded (subscriptions, messages, frames waiting to
 * be sent), and so is the number of connections one session keeps open here.
 *
 * A plan page hears its plan's status, decisions and progress (targets
 * dispatched and done), at most once a second while it rolls out.
 */
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { z } from 'zod'
import { CrossSiteRejected, PageNotFound } from '../http/index.js'
import { isOwnOrigin } from './same-origin.js'
import type { PortalSessions } from './session-store.js'
import { statusWords } from './status-words.js'
import type { Run } from '../runs/index.js'
import type { Principal } from '../auth/index.js'
import type { PlanProgress, PlanState } from '../plans/index.js'

const Subscribe = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), run_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict(),
  z.object({ type: z.literal('inbox') }).strict(),
  z.object({ type: z.literal('plan'), plan_id: z.string().regex(/^p[0-9a-z]{9}[0-9a-f]{8}$/) }).strict(),
])

/** Limits of one connection, and of one session's connections on this replica. */
export const LIVE_LIMITS = {
  /** Runs one page follows. */
  runs: 16,
  /** Plans one page follows. */
  plans: 4,
  /** A followed plan's progress is sent at most this often (ms); its last change is always sent. */
  planEveryMs: 1000,
  /** Messages a connection may send (a page sends one or two). */
  messages: 64,
  /** Runs the inbox remembers as waiting (to tell when one stops waiting). */
  pending: 10_000,
  /** Bytes queued for a reader that does not read; past it the socket is closed (the page reconnects). */
  queuedBytes: 1024 * 1024,
  /** Open sockets per session here; a new one closes the oldest. */
  perSession: 8,
} as const

/** Close codes a page can tell apart (4000–4999 are the application's). */
export const LIVE_CLOSE = { sessionEnded: 4401, tooManyMessages: 4408, replaced: 4409, slowReader: 4413 } as const

export default async function liveSocket(app: FastifyInstance, opts: { allowedOrigins: ReadonlySet<string>, sessions: PortalSessions }) {
  const { store, plans } = app.writ
  const { sessions } = opts
  /** Open sockets per session id, oldest first. */
  const bySession = new Map<string, Set<WebSocket>>()

  app.route({
    method: 'GET',
    url: '/live',
    // Another site must not open a socket with the operator's cookie.
    preValidation: async (req) => {
      const origin = req.headers.origin
      if (origin !== undefined && !isOwnOrigin(req, origin, opts.allowedOrigins)) throw new CrossSiteRejected('WebSocket', `origin ${origin.slice(0, 100)}`)
    },
    // Opened as a page (no upgrade), the address says what it is, as a page.
    handler: async () => { throw new PageNotFound('/ui/live (it is the pages\' live-update socket; open the inbox or a run instead)') },
    wsHandler: (socket: WebSocket, req) => {
      const session = req.portalSession
      if (!session) { socket.close(LIVE_CLOSE.sessionEnded, 'session ended'); return }
      const close = (code: number, why: string): void => { if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, why) }

      let mine = bySession.get(session.sid)
      if (!mine) bySession.set(session.sid, mine = new Set())
      if (mine.size >= LIVE_LIMITS.perSession) {
        const oldest = mine.values().next().value as WebSocket
        mine.delete(oldest)
        oldest.close(LIVE_CLOSE.replaced, 'too many open pages for this session')
      }
      mine.add(socket)
      const endSession = sessions.onEnd(session.sid, () => close(LIVE_CLOSE.sessionEnded, 'session ended'))
      // (A timer cannot wait past 2^31 ms; a session longer than that has its socket closed then, and the page reconnects.)
      const timeUp = setTimeout(() => close(LIVE_CLOSE.sessionEnded, 'session ended'), Math.min(2 ** 31 - 1, Math.max(0, session.expiresAt - Date.now())))

      const runs = new Set<string>()
      let inbox = false
      let messages = 0
      const pending = new Set<string>()
      const send = (msg: unknown): void => {
        if (socket.readyState !== socket.OPEN) return
        if (socket.bufferedAmount > LIVE_LIMITS.queuedBytes) { close(LIVE_CLOSE.slowReader, 'not reading'); return }
        socket.send(JSON.stringify(msg))
      }
      const runState = (run: Pick<Run, 'id' | 'status' | 'status_reason'>) => {
        const words = statusWords(run.status)
        return { type: 'run', run_id: run.id, status: run.status, status_reason: run.status_reason, label: words.label, tone: words.tone }
      }
      /** Followed plans: what was last sent, and how to stop following. */
      const followed = new Map<string, { sent: string, state: PlanState, progress?: PlanProgress, stop?: () => void, timer?: NodeJS.Timeout, due: boolean }>()
      const planMessage = (id: string): { msg: unknown, key: string } | undefined => {
        const f = followed.get(id)
        if (!f) return undefined
        const done = f.progress?.results.size ?? 0
        const progress = `${done + (f.progress?.inFlight().length ?? 0)}/${done}`
        return { key: `${f.state.status}|${progress}|${f.state.approvals.length}|${f.state.preview?.length ?? 0}|${f.state.halt ? 1 : 0}`, msg: { type: 'plan', plan_id: id, status: f.state.status, status_reason: f.state.status_reason, progress } }
      }
      /** Sends the plan's state if it changed since last sent, at most once a second (the last change always goes out). */
      const sendPlan = (id: string): void => {
        const f = followed.get(id)
        if (!f) return
        if (f.timer) { f.due = true; return }
        const m = planMessage(id)
        if (!m || m.key === f.sent) return
        f.sent = m.key
        send(m.msg)
        f.timer = setTimeout(() => { f.timer = undefined; if (f.due) { f.due = false; sendPlan(id) } }, LIVE_LIMITS.planEveryMs)
      }
      const stopPlans = plans.store.onChange((state) => {
        const f = followed.get(state.id)
        if (!f) return
        f.state = state
        sendPlan(state.id)
      })
      const followPlan = async (id: string): Promise<void> => {
        if (followed.has(id)) { const f = followed.get(id); if (f) f.sent = ''; sendPlan(id); return }
        if (followed.size >= LIVE_LIMITS.plans) {
          send({ type: 'error', code: 'WRIT_ERR_TOO_MANY_SUBSCRIPTIONS', message: `a page follows at most ${LIVE_LIMITS.plans} plans` })
          return
        }
        let state: PlanState
        try { state = (await plans.service.get(req.principal as Principal, id)).state } catch {
          send({ type: 'error', code: 'WRIT_ERR_PLAN_NOT_FOUND', message: `no plan ${id}` })
          return
        }
        if (socket.readyState !== socket.OPEN || followed.has(id)) return
        const f: { sent: string, state: PlanState, progress?: PlanProgress, stop?: () => void, timer?: NodeJS.Timeout, due: boolean } = { sent: '', state, due: false }
        followed.set(id, f)
        const progress = await plans.progress(id, state).catch(() => undefined)
        if (followed.get(id) !== f) return
        if (progress) {
          f.progress = progress
          f.stop = progress.onChange(() => sendPlan(id))
        }
        // A change that landed while this was reading went to no one: read the state again now that changes reach `f`.
        const now = await plans.store.state(id).catch(() => undefined)
        if (now && followed.get(id) === f && Date.parse(now.updated_at) >= Date.parse(f.state.updated_at)) f.state = now
        send({ type: 'subscribed' })
        sendPlan(id)
      }
      const stop = store.onChange((run) => {
        if (runs.has(run.id)) send(runState(run))
        if (!inbox) return
        const waits = run.status === 'pending_approval'
        if (waits === pending.has(run.id)) return
        if (waits && pending.size >= LIVE_LIMITS.pending) return
        if (waits) pending.add(run.id)
        else pending.delete(run.id)
        send({ type: 'inbox' })
      })
      socket.on('message', (raw) => {
        if (++messages > LIVE_LIMITS.messages) { close(LIVE_CLOSE.tooManyMessages, 'too many messages'); return }
        let json: unknown
        try { json = JSON.parse(raw.toString()) } catch { return }
        const m = Subscribe.safeParse(json)
        if (!m.success) return
        if (m.data.type === 'run') {
          if (!runs.has(m.data.run_id) && runs.size >= LIVE_LIMITS.runs) {
            send({ type: 'error', code: 'WRIT_ERR_TOO_MANY_SUBSCRIPTIONS', message: `a page follows at most ${LIVE_LIMITS.runs} runs` })
            return
          }
          runs.add(m.data.run_id)
        }
        if (m.data.type === 'plan') { void followPlan(m.data.plan_id); return }
        if (m.data.type === 'inbox' && !inbox) {
          inbox = true
          for (const r of store.list({ status: 'pending_approval' }, LIVE_LIMITS.pending)) pending.add(r.id)
        }
        send({ type: 'subscribed' })
        // The state now, so a page rendered before its run changed (finished before this socket connected) is brought up to date.
        if (m.data.type === 'run') {
          const now = store.summary(m.data.run_id)
          if (now) send(runState(now))
        }
      })
      socket.on('close', () => {
        stop()
        stopPlans()
        for (const f of followed.values()) { f.stop?.(); clearTimeout(f.timer) }
        followed.clear()
        endSession()
        clearTimeout(timeUp)
        mine.delete(socket)
        if (mine.size === 0 && bySession.get(session.sid) === mine) bySession.delete(session.sid)
      })
    },
  })
}
