/**
 * `GET /v1/audit`: the chain as JSON lines, filtered, one bounded page at a
 * time. Operators see every event; agents see their own requests and the
 * events of their own runs. A page that stops before the end of the stream
 * names where the next one starts in the `Writ-Next-Seq` header (pass it as
 * `since_seq`); the body stays pure NDJSON.
 */
import type { FastifyInstance } from 'fastify'
import { AuditQuerySchema } from './audit-schemas.js'
import { principalOf } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'

/** The response header naming the `since_seq` of the next page. */
export const NEXT_SEQ_HEADER = 'writ-next-seq'

export default async function auditRoutes(app: FastifyInstance) {
  const { auditReader } = app.writ

  app.get('/audit', async (req, reply) => {
    const principal = principalOf(req)
    const q = parseOrThrow(AuditQuerySchema, req.query, 'query')
    const page = await auditReader.page(principal, q)
    if (page.next !== undefined) reply.header(NEXT_SEQ_HEADER, String(page.next))
    return reply.type('application/x-ndjson').send(page.lines.length ? `${page.lines.join('\n')}\n` : '')
  })
}
