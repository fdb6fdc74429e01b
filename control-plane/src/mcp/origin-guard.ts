/**
 * DNS-rebinding guard for `/mcp`: the `Host` header, and the `Origin` header
 * when a browser sends one, must name an allowed hostname (port-agnostic).
 * The checks are the SDK's own (`validateHostHeader`, `validateOriginHeader`);
 * a refusal is a coded error, so it is typed like any other and audited when
 * the caller is authenticated.
 */
import createError from '@fastify/error'
import { validateHostHeader, validateOriginHeader } from '@modelcontextprotocol/server'
import type { FastifyRequest } from 'fastify'
import { publicUrl, type Config } from '../config.js'

export const ForbiddenOrigin = createError('WRIT_ERR_FORBIDDEN_ORIGIN', '%s: /mcp answers only pages from %s (setting mcp.allowed_origins)', 403)
export const ForbiddenHost = createError('WRIT_ERR_FORBIDDEN_HOST', '%s: /mcp answers only requests for %s (setting mcp.allowed_hosts)', 403)

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]']

/** The public URL's hostname, plus the loopback names when it is loopback (a dev stack is reached either way). */
function defaultHostnames(config: Pick<Config, 'public_url' | 'listen'>): string[] {
  const host = new URL(publicUrl(config)).hostname
  return LOOPBACK.includes(host) ? LOOPBACK : [host]
}

export interface AllowedNames { hosts: string[], origins: string[] }

export function allowedNames(config: Pick<Config, 'public_url' | 'listen' | 'mcp'>): AllowedNames {
  const fallback = defaultHostnames(config)
  return { hosts: config.mcp.allowed_hosts ?? fallback, origins: config.mcp.allowed_origins ?? fallback }
}

/** Throws a coded 403 when the request's Host or Origin is not allowed. */
export function checkHostAndOrigin(req: FastifyRequest, allowed: AllowedNames): void {
  const host = validateHostHeader(req.headers.host, allowed.hosts)
  if (!host.ok) throw new ForbiddenHost(host.message, allowed.hosts.join(', '))
  const origin = validateOriginHeader(req.headers.origin, allowed.origins)
  if (!origin.ok) throw new ForbiddenOrigin(origin.message, allowed.origins.join(', '))
}
