/**
 * Operator sign-in behind one seam: the sign-in page, token sign-in (when
 * enabled), one-time links, sign-out. Every route that changes the session is
 * a POST with a CSRF token; opening a link only renders a page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { FailedAuthLimited, type FailedAuthLimiter } from '../http/index.js'
import type { PageRenderer } from './page-render.js'
import { safeNext, signIn, signOut, type SessionLimits } from './portal-session.js'
import type { PortalSessions } from './session-store.js'
import type { SignInLinks } from './sign-in-links.js'

const SignInQuery = z.object({ next: z.string().max(512).optional() }).passthrough()
const TokenForm = z.object({ _csrf: z.string().optional(), token: z.string().max(512), next: z.string().max(512).optional() }).strict()
const LinkForm = z.object({ _csrf: z.string().optional(), code: z.string().max(64) }).strict()

export interface SignInOptions {
  pages: PageRenderer, links: SignInLinks, sessions: PortalSessions, limits: SessionLimits, failedAuth: FailedAuthLimiter, tokenSignIn: boolean
  /** The single sign-on provider's name, when one is configured (its button leads to /ui/sign-in/oidc). */
  ssoName?: string | undefined
}

export default async function signInRoutes(app: FastifyInstance, opts: SignInOptions) {
  const { principals } = app.writ
  const { pages, links, sessions, limits, failedAuth } = opts
  /** An address that failed too often waits before its next attempt is even looked at (a principal already working from it excepted). */
  const admit = (req: FastifyRequest, reply: FastifyReply, principal?: string): void => {
    const admission = failedAuth.admit(req.ip, principal)
    if (admission.ok) return
    reply.header('retry-after', String(admission.retryAfterSeconds))
    throw new FailedAuthLimited(admission.retryAfterSeconds)
  }
  const attempts = { config: { rateLimit: { max: 20, timeWindow: 60_000 } } }
  const sso = (next: string) => (opts.ssoName ? { sso: { name: opts.ssoName, url: `/ui/sign-in/oidc?next=${encodeURIComponent(next)}` } } : {})

  app.get('/sign-in', async (req, reply) => {
    const q = SignInQuery.safeParse(req.query)
    return pages.page(req, reply, '@sign-in', { title: 'Sign in' }, { next: safeNext(q.success ? q.data.next : undefined), tokenSignIn: opts.tokenSignIn, ...sso(safeNext(q.success ? q.data.next : undefined)) })
  })

  app.post('/sign-in', { ...attempts, preHandler: app.csrfProtection }, async (req, reply) => {
    const form = TokenForm.safeParse(req.body)
    const next = safeNext(form.success ? form.data.next : undefined)
    if (!opts.tokenSignIn) return pages.page(req, reply, '@sign-in', { title: 'Sign in' }, { next, tokenSignIn: false, error: 'Token sign-in is switched off.', ...sso(next) }, 403)
    const principal = form.success ? principals.authenticate(form.data.token) : undefined
    admit(req, reply, principal?.id)
    if (!principal || principal.kind !== 'operator') {
      failedAuth.failed(req.ip)
      req.log.warn({ ip: req.ip }, 'portal sign-in refused')
      return pages.page(req, reply, '@sign-in', { title: 'Sign in' }, { next, tokenSignIn: true, error: principal ? 'That token belongs to an agent; the portal is for operators.' : 'That token is not valid.', ...sso(next) }, 401)
    }
    failedAuth.succeeded(req.ip, principal.id)
    await signIn(req, sessions, limits, principal, 'token')
    req.log.info({ operator: principal.id, via: 'token' }, 'operator signed in to the portal')
    return reply.redirect(next, 303)
  })

  app.get('/sign-in/link/:code', async (req, reply) => {
    const { code } = req.params as { code: string }
    admit(req, reply)
    const hit = await links.peek(code)
    if (!hit.ok) failedAuth.failed(req.ip)
    return pages.page(req, reply, '@sign-in-link', { title: 'Sign in' }, hit.ok ? { operatorId: hit.operator, code } : { error: hit.message }, hit.ok ? 200 : 404)
  })

  app.post('/sign-in/link', { ...attempts, preHandler: app.csrfProtection }, async (req, reply) => {
    admit(req, reply)
    const form = LinkForm.safeParse(req.body)
    const hit = form.success ? await links.redeem(form.data.code) : { ok: false as const, message: 'this sign-in link is not valid' }
    const principal = hit.ok ? principals.get(hit.operator) : undefined
    if (!hit.ok || !principal || principal.kind !== 'operator') {
      failedAuth.failed(req.ip)
      return pages.page(req, reply, '@sign-in-link', { title: 'Sign in' }, { error: hit.ok ? `operator ${hit.operator} is not configured here` : hit.message }, 401)
    }
    await signIn(req, sessions, limits, principal, 'link')
    req.log.info({ operator: principal.id, via: 'link' }, 'operator signed in to the portal')
    return reply.redirect('/ui', 303)
  })

  app.post('/sign-out', { preHandler: app.csrfProtection }, async (req, reply) => {
    await signOut(req, sessions)
    return reply.redirect('/ui/sign-in', 303)
  })
}
