/**
 * `GET /v1/audit`: the chain as JSON lines, filtered. Operators see every
 * event; agents see their own requests and the events of their own runs.
 */
import type { FastifyInstance } from 'fastify'
import { AuditQuerySchema } from './audit-schemas.js'
import { AuditEventSchema, type AuditEvent } from './audit-event.js'
import { principalOf, type Principal } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import type { RunStore } from '../runs/index.js'

/** Whether `principal` may see `event` (also used by the WebSocket stream). */
export function auditVisible(principal: Principal, event: AuditEvent, store: RunStore): boolean {
  if (principal.kind === 'operator') return true
  if (event.actor?.id === principal.id) return true
  if (event.run_id === undefined) return false
  return store.summary(event.run_id)?.requester.id === principal.id
}

export default async function auditRoutes(app: FastifyInstance) {
  const { audit, store } = app.writ

  app.get('/audit', async (req, reply) => {
    const principal = principalOf(req)
    const q = parseOrThrow(AuditQuerySchema, req.query, 'query')
    const lines: string[] = []
    for await (const stored of audit.read(q.since_seq)) {
      const parsed = AuditEventSchema.safeParse(safeJson(stored.text))
      // Unparseable events are passed through to operators verbatim: hiding them would hide tampering.
      if (!parsed.success) {
        if (principal.kind === 'operator' && !q.run_id && !q.type && !q.actor) lines.push(stored.text)
        continue
      }
      const e = parsed.data
      if (q.run_id !== undefined && e.run_id !== q.run_id) continue
      if (q.type !== undefined && e.type !== q.type) continue
      if (q.actor !== undefined && e.actor?.id !== q.actor) continue
      if (!auditVisible(principal, e, store)) continue
      lines.push(stored.text)
      if (lines.length >= q.limit) break
    }
    return reply.type('application/x-ndjson').send(lines.length ? `${lines.join('\n')}\n` : '')
  })
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}
