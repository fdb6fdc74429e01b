/**
 * The authorization server's HTTP face: oidc-provider answers everything
 * under `/oauth` (authorization, token, registration, revocation, its
 * discovery document), RFC 8414 metadata at
 * `/.well-known/oauth-authorization-server/oauth`, and RFC 9728
 * protected-resource metadata for `/mcp`. oidc-provider reads its own request
 * bodies, so these requests leave Fastify before a body is parsed — after a
 * request budget per address (oidc-provider has no limits of its own).
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { RateLimited } from '../http/index.js'
import { MCP_SCOPE, type OAuthServer } from './oauth-server.js'

const METHODS = ['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'DELETE'] as const

export default async function oauthRoutes(app: FastifyInstance, opts: { oauth: OAuthServer, requestsPerMinute: number }) {
  const { oauth } = opts
  const handle = oauth.handler()
  await app.register(rateLimit, { global: false })
  // Run as the routes' first onRequest hook, so a hijacked request is counted before it leaves Fastify.
  const budget = app.rateLimit({
    max: opts.requestsPerMinute, timeWindow: 60_000, keyGenerator: (req) => req.ip,
    errorResponseBuilder: (_req, ctx) => new RateLimited(ctx.after),
  })

  /** Hands the raw request to oidc-provider as if it were mounted at `/oauth`. */
  const toProvider = (req: FastifyRequest, reply: FastifyReply, path: string): void => {
    reply.hijack()
    const raw = req.raw as IncomingMessage & { originalUrl?: string }
    const query = raw.url?.includes('?') ? raw.url.slice(raw.url.indexOf('?')) : ''
    raw.originalUrl = `/oauth${path}${query}`
    raw.url = `${path}${query}`
    handle(raw, reply.raw)
  }
  const empty = async () => undefined

  app.route({
    method: [...METHODS], url: '/oauth/*',
    onRequest: [budget, async (req, reply) => toProvider(req, reply, (req.raw.url ?? '').split('?')[0]!.slice('/oauth'.length))],
    handler: empty,
  })

  // RFC 8414 puts the issuer's path after the well-known name; the document is oidc-provider's own discovery.
  app.route({
    method: ['GET', 'HEAD', 'OPTIONS'], url: '/.well-known/oauth-authorization-server/oauth',
    onRequest: [budget, async (req, reply) => toProvider(req, reply, '/.well-known/openid-configuration')],
    handler: empty,
  })

  const resourceMetadata = {
    resource: oauth.resource,
    authorization_servers: [oauth.issuer],
    scopes_supported: [MCP_SCOPE],
    bearer_methods_supported: ['header'],
    resource_name: 'writ',
  }
  for (const url of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    app.get(url, { onRequest: budget }, async (_req, reply) => reply.header('access-control-allow-origin', '*').header('cache-control', 'public, max-age=300').send(resourceMetadata))
  }
}
