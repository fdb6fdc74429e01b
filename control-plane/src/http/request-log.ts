/**
 * What a request looks like in the log: where it went, never what it carried.
 * A query string can hold a token a client put there, and the single sign-on
 * callback carries the provider's code and state; the path of a one-time
 * sign-in link is the code itself. The log keeps the path, with that code masked.
 */
import type { FastifyRequest } from 'fastify'

const SIGN_IN_LINK = /(\/sign-in\/link\/)[^/]+/gi

/** The request's path without its query string or fragment, with any one-time sign-in code masked. */
export function logSafePath(url: string): string {
  const end = url.search(/[?#]/)
  return (end === -1 ? url : url.slice(0, end)).replace(SIGN_IN_LINK, '$1[code]')
}

/** pino's `req` serializer for the app's request lines (replaces Fastify's, which logs the whole URL). */
export function serializeRequest(req: FastifyRequest): Record<string, unknown> {
  return { method: req.method, url: logSafePath(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort }
}
