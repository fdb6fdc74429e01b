/**
 * Single sign-on routes: `/ui/sign-in/oidc` sends the operator to the
 * provider (keeping state, nonce and the PKCE verifier, with the page to
 * return to, in a short-lived encrypted cookie of their own — never in the
 * signed-in session, which starting a sign-on must not renew), and the
 * callback signs them in through the one `signIn` seam — or shows a page
 * that says why not.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { OIDC_TRANSACTION_MS, type OidcSignIn } from './oidc-sign-in.js'
import type { PageRenderer } from './page-render.js'
import { safeNext, signIn, type SessionLimits } from './portal-session.js'
import type { PortalSessions } from './session-store.js'

const StartQuery = z.object({ next: z.string().max(512).optional() }).passthrough()

export interface OidcRouteOptions { pages: PageRenderer, oidc: OidcSignIn, sessions: PortalSessions, limits: SessionLimits, tokenSignIn: boolean }

export default async function oidcRoutes(app: FastifyInstance, opts: OidcRouteOptions) {
  const { pages, oidc } = opts
  const attempts = { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }
  const sso = (next: string) => ({ name: oidc.name, url: `/ui/sign-in/oidc?next=${encodeURIComponent(next)}` })
  const failed = (req: FastifyRequest, reply: FastifyReply, next: string, title: string, message: string, status: number): Promise<FastifyReply> =>
    pages.page(req, reply, '@sign-in', { title: 'Sign-in refused' }, { next, tokenSignIn: opts.tokenSignIn, sso: sso(next), errorTitle: title, error: message }, status)

  app.get('/sign-in/oidc', attempts, async (req, reply) => {
    const q = StartQuery.safeParse(req.query)
    const next = safeNext(q.success ? q.data.next : undefined)
    const started = await oidc.start(next)
    if ('ok' in started) return failed(req, reply, next, 'Single sign-on is unavailable', started.message, 503)
    req.oidcSignIn.set('tx', started.tx)
    return reply.redirect(started.url, 303)
  })

  app.get('/sign-in/oidc/callback', attempts, async (req, reply) => {
    const tx = req.oidcSignIn.get('tx')
    // One use: whatever happens next, this sign-in is over.
    req.oidcSignIn.delete()
    if (!tx || Date.now() - tx.started > OIDC_TRANSACTION_MS) {
      req.log.warn({ ip: req.ip }, 'single sign-on callback without a sign-in under way')
      return failed(req, reply, '/ui', 'No sign-in under way', 'This browser has no sign-in waiting for that answer: it finished already, took longer than 10 minutes, or began elsewhere. Start again.', 400)
    }
    const outcome = await oidc.finish(req.url.split('?')[1] ?? '', tx)
    if (!outcome.ok) {
      req.log.warn({ ip: req.ip, kind: outcome.kind }, `single sign-on refused: ${outcome.message}`)
      if (outcome.kind === 'unmapped') return failed(req, reply, tx.next, 'Not an operator here', outcome.message, 403)
      if (outcome.kind === 'unavailable') return failed(req, reply, tx.next, 'Single sign-on is unavailable', outcome.message, 503)
      return failed(req, reply, tx.next, 'Sign-in refused', `${outcome.message}. Nothing was signed in; start again.`, 400)
    }
    await signIn(req, opts.sessions, opts.limits, outcome.principal, 'oidc', outcome.groups)
    req.log.info({ operator: outcome.principal.id, via: 'oidc' }, 'operator signed in to the portal')
    return reply.redirect(tx.next, 303)
  })
}
