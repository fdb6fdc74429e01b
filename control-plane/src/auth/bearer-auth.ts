/**
 * Bearer-token authentication for everything under `/v1`: sets
 * `request.principal` or answers 401. The token is never logged.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { FailedAuthLimited, Forbidden, Unauthorized, type FailedAuthLimiter } from '../http/index.js'
import { bearerToken, type Principal } from './principals.js'

export interface WritRequestDecorations { principal: Principal | null }

declare module 'fastify' {
  interface FastifyRequest extends WritRequestDecorations {}
}

/** Checks OAuth access tokens for `/mcp` (the authorization server, when `oauth` is configured). */
export interface AccessTokenCheck {
  check(token: string): Promise<{ ok: true, principal: Principal } | { ok: false, why: string }>
}

/** `/mcp` and below: the one resource OAuth access tokens are for. */
function isMcpPath(url: string): boolean {
  return url === '/mcp' || url.startsWith('/mcp/') || url.startsWith('/mcp?')
}

export default fp(async function auth(app: FastifyInstance, opts: { failedAuth: FailedAuthLimiter, oauth?: AccessTokenCheck | undefined }) {
  const { failedAuth, oauth } = opts
  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (req, reply) => {
    const token = bearerToken(req.headers.authorization)
    let principal = token ? app.writ.principals.authenticate(token) : undefined
    let refusal: string | undefined
    // Not a static token: on /mcp it may be an OAuth access token (audience = the exact /mcp URL).
    if (token && !principal && oauth && isMcpPath(req.url)) {
      const checked = await oauth.check(token)
      if (checked.ok) principal = checked.principal
      else refusal = checked.why
    }
    // An address that failed too often waits, unless this principal was already working from it.
    const admission = failedAuth.admit(req.ip, principal?.id)
    if (!admission.ok) {
      reply.header('retry-after', String(admission.retryAfterSeconds))
      throw new FailedAuthLimited(admission.retryAfterSeconds)
    }
    if (!token) {
      // With MCP authorization on, a tokenless call to /mcp is a client's discovery step (the 401 names the metadata), not a
      // guess: not counted, or the many connectors that share a cloud's egress addresses would lock each other out.
      const discovery = oauth !== undefined && isMcpPath(req.url)
      if (!discovery) failedAuth.failed(req.ip)
      throw new Unauthorized(discovery ? 'send "Authorization: Bearer <token>"; MCP clients get one through OAuth (see WWW-Authenticate)' : 'send "Authorization: Bearer <token>"')
    }
    if (!principal) {
      failedAuth.failed(req.ip)
      req.log.warn({ ip: req.ip, ...(refusal ? { why: refusal } : {}) }, 'rejected an unknown bearer token')
      throw new Unauthorized(refusal ? `the bearer token is not valid: ${refusal}` : 'the bearer token is not valid')
    }
    failedAuth.succeeded(req.ip, principal.id)
    req.principal = principal
    // A child logger per request costs; a silent logger (benchmarks, embedded use) never prints it.
    if (req.log.level !== 'silent') req.log = req.log.child({ principal: principal.id })
  })
}, { name: 'writ-auth', dependencies: ['writ-control-plane'] })

/** The authenticated principal; routes under the auth plugin always have one. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Unauthorized('not authenticated')
  return req.principal
}

export function requireOperator(req: FastifyRequest): Principal {
  const p = principalOf(req)
  if (p.kind !== 'operator') throw new Forbidden('this needs an operator token')
  return p
}
