/**
 * Unauthenticated operational endpoints: `/healthz` (the process is up),
 * `/readyz` (NATS connected, catalog loaded), `/metrics` (Prometheus text).
 */
import type { FastifyInstance } from 'fastify'

export default async function opsRoutes(app: FastifyInstance) {
  app.get('/healthz', async () => ({ ok: true }))

  app.get('/readyz', async (_req, reply) => {
    const checks = app.writ.readiness()
    const ok = Object.values(checks).every(Boolean)
    return reply.code(ok ? 200 : 503).send({ ok, checks })
  })

  app.get('/metrics', async (_req, reply) => reply.type(app.writ.metrics.contentType).send(await app.writ.metrics.render()))
}
