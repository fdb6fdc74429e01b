/**
 * Security headers on every response. The header set is helmet's for our
 * options, computed once at boot (one injected request into a throwaway app
 * with @fastify/helmet), then applied by one synchronous hook: helmet's own
 * per-request middleware chain and reply decorators cost several percent of
 * the request path at run-dispatch rates, for headers that never change (no
 * CSP nonces, no per-route options).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet'

/** Response headers that describe the probe's own body or connection, not security. */
const NOT_SECURITY = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding'])

export async function securityHeaders(options: FastifyHelmetOptions): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false })
  try {
    await probe.register(helmet, options)
    probe.get('/', async () => '')
    const res = await probe.inject({ method: 'GET', url: '/' })
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(res.headers)) {
      if (NOT_SECURITY.has(name) || value === undefined) continue
      out[name] = Array.isArray(value) ? value.join(', ') : String(value)
    }
    return out
  } finally { await probe.close() }
}

export default fp(async function securityHeadersPlugin(app: FastifyInstance, opts: { helmet: FastifyHelmetOptions }) {
  const headers = await securityHeaders(opts.helmet)
  if (!headers['content-security-policy'] || !headers['x-content-type-options']) throw new Error('security headers could not be derived from helmet')
  app.addHook('onRequest', (_req, reply, done) => { reply.headers(headers); done() })
}, { name: 'writ-security-headers' })
