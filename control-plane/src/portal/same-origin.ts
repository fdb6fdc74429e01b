/**
 * Whether a request to the portal comes from the portal's own pages. Beside
 * the CSRF token, a POST from another site — even a sibling subdomain that
 * could plant cookies — is refused on what the browser itself says:
 * `Sec-Fetch-Site` (every current browser sends it) and `Origin`.
 */
import type { FastifyRequest } from 'fastify'

/** The origin the request was addressed to, or one of `allowed` (the public URL's). */
export function isOwnOrigin(req: FastifyRequest, origin: string, allowed: ReadonlySet<string>): boolean {
  return origin === `${req.protocol}://${req.headers.host ?? ''}` || allowed.has(origin)
}

/** What says this request came from another site, or undefined when nothing does. */
export function crossSiteEvidence(req: FastifyRequest, allowed: ReadonlySet<string>): string | undefined {
  const site = req.headers['sec-fetch-site']
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site: ${site.slice(0, 32)}`
  const origin = req.headers.origin
  // The portal's pages are no-referrer, so browsers send `Origin: null` on their own forms: "null" says nothing either way.
  if (typeof origin === 'string' && origin !== 'null' && !isOwnOrigin(req, origin, allowed)) return `Origin: ${origin.slice(0, 100)}`
  return undefined
}
