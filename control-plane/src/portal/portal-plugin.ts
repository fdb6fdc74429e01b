/**
 * The operator portal under `/ui`: server-rendered pages, an encrypted session
 * cookie, CSRF tokens on every POST, the API's security headers with a CSP
 * that allows only the portal's own script and stylesheet. GET never changes
 * anything, whoever asks (a person, Slack's link unfurler, a prefetcher).
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import secureSession, { type Session } from '@fastify/secure-session'
import csrfProtection from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import { durationMs, publicUrl } from '../config.js'
import { auditRejection, CrossSiteRejected, CsrfRejected, detailsOf, FailedAuthLimited, GroupsExpired, PageNotFound, SessionEnded, securityHeadersPlugin, type FailedAuthLimiter } from '../http/index.js'
import { ASSETS } from './assets.js'
import listPageRoutes from './list-page-routes.js'
import liveSocket from './live-socket.js'
import { PageRenderer } from './page-render.js'
import { OIDC_TRANSACTION_MS, OidcSignIn, type OidcTransaction } from './oidc-sign-in.js'
import oidcRoutes from './oidc-routes.js'
import oauthPageRoutes from './oauth-page-routes.js'
import type { OAuthServer } from '../oauth/index.js'
import passkeyPageRoutes from './passkey-page-routes.js'
import { readSession, redirectToSignIn, sessionKey, type SessionLimits } from './portal-session.js'
import runPageRoutes from './run-page-routes.js'
import grantPageRoutes from './grant-page-routes.js'
import reviewPageRoutes from './review-page-routes.js'
import planPageRoutes from './plan-page-routes.js'
import { crossSiteEvidence } from './same-origin.js'
import { PortalSessions } from './session-store.js'
import { SignInLinks } from './sign-in-links.js'
import signInRoutes from './sign-in-routes.js'
import { createTemplates } from './templates.js'
import unconfiguredRoutes from './unconfigured-routes.js'
import freezePageRoutes from './freeze-page-routes.js'

/** What the portal adds to the app (the dev stack mints sign-in links with it). */
export interface PortalDecorations { portal: { links: SignInLinks, sessions: PortalSessions, signInUrl(code: string): string } }

declare module 'fastify' {
  interface FastifyInstance extends PortalDecorations {}
  interface FastifyRequest {
    /** The signed-in session behind `principal` (its server-side id and when it ends). */
    portalSession: { sid: string, expiresAt: number } | null
    /** The single sign-on under way in this browser, in its own short-lived cookie. */
    oidcSignIn: Session<{ tx: OidcTransaction }>
  }
}

const PUBLIC = new Set(['/ui/sign-in', '/ui/sign-in/link', '/ui/sign-out'])

export default fp(async function portalPlugin(root: FastifyInstance, opts: { failedAuth: FailedAuthLimiter, oauth?: OAuthServer | undefined }) {
  const { config, principals, approvals, passkeys, nc, log } = root.writ
  const { failedAuth } = opts
  const links = await SignInLinks.open(nc, config.jetstream.replicas)
  const oidcConfig = config.portal.oidc
  const limits: SessionLimits = {
    ttlMs: durationMs(config.portal.session_ttl),
    groupsMaxAgeMs: oidcConfig?.groups_claim !== undefined ? durationMs(oidcConfig.groups_max_age) : undefined,
  }
  const sessions = await PortalSessions.open(nc, config.jetstream.replicas, limits.ttlMs, log)
  root.addHook('onClose', async () => sessions.close())
  const base = publicUrl(config)
  const ownOrigins = new Set([new URL(base).origin])
  root.decorate('portal', { links, sessions, signInUrl: (code: string) => `${base}/ui/sign-in/link/${code}` })

  const oidc = OidcSignIn.fromConfig(config, principals, log)
  oidc?.warmUp()

  await root.register(async (ui) => {
    const { key, ephemeral } = sessionKey(config.portal.session_key_file)
    if (ephemeral) log.warn('portal.session_key_file is not set: sessions are signed with a key made at start (they end with this process and are not shared with other replicas)')
    const secure = config.portal.secure_cookies ?? base.startsWith('https://')
    // Under https the cookies are `__Host-` ones: Secure, Path=/, no Domain, so no sibling subdomain can set or shadow them.
    const cookie = (name: string, path: string) => ({
      cookieName: secure ? `__Host-${name}` : name,
      cookie: { path: secure ? '/' : path, httpOnly: true, sameSite: 'lax' as const, secure },
    })
    await ui.register(secureSession, [
      { sessionName: 'session', key, expiry: Math.round(limits.ttlMs / 1000), ...cookie('writ_session', '/ui') },
      // The sign-on under way has its own cookie: starting one never rewrites (and so never renews) a signed-in session.
      { sessionName: 'oidcSignIn', key, expiry: Math.round(OIDC_TRANSACTION_MS / 1000), ...cookie('writ_oidc', '/ui/sign-in/oidc') },
    ])
    await ui.register(formbody, { bodyLimit: 16 * 1024 })
    await ui.register(csrfProtection, {
      sessionPlugin: '@fastify/secure-session',
      getUserInfo: (req) => req.session.get('operator') ?? 'anonymous',
      getToken: (req) => (req.body as { _csrf?: string } | undefined)?._csrf,
    })
    await ui.register(rateLimit, { global: false })
    await ui.register(securityHeadersPlugin, {
      helmet: {
        contentSecurityPolicy: {
          useDefaults: false,
          directives: {
            defaultSrc: ["'none'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'"], connectSrc: ["'self'"],
            formAction: ["'self'"], frameAncestors: ["'none'"], baseUri: ["'none'"],
          },
        },
        crossOriginResourcePolicy: { policy: 'same-origin' },
        referrerPolicy: { policy: 'no-referrer' },
      },
    })

    const pages = new PageRenderer(createTemplates(), () => approvals.pendingCount(), { passkeys: passkeys !== undefined, oauth: opts.oauth !== undefined }, () => root.writ.brakes.freezes)

    ui.decorateRequest('principal', null)
    ui.decorateRequest('portalSession', null)
    ui.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0] as string
      if (path.startsWith('/ui/assets/')) return
      const state = await readSession(req, principals, sessions, limits)
      if (state.kind === 'ended') {
        req.log.info({ why: state.why }, 'portal session ended')
        const sid = req.session.get('sid')
        if (typeof sid === 'string') await sessions.revoke(sid)
        req.session.delete()
      }
      if (state.kind === 'signed_in') {
        req.principal = state.principal
        req.portalSession = { sid: state.sid, expiresAt: state.expiresAt }
      }
      const changes = req.method !== 'GET' && req.method !== 'HEAD'
      if (changes && state.kind === 'groups_stale' && !PUBLIC.has(path)) req.principal = state.principal
      const crossSite = changes ? crossSiteEvidence(req, ownOrigins) : undefined
      if (crossSite) throw new CrossSiteRejected(req.method, crossSite)
      if (state.kind === 'signed_in' || PUBLIC.has(path) || path.startsWith('/ui/sign-in/')) return
      if (state.kind === 'groups_stale') {
        // Groups from the provider are read again by going back through it (invisible while its own session lasts).
        if (!changes) return redirectToSignIn(req, reply, true)
        throw new GroupsExpired(oidc?.name ?? 'the identity provider', oidcConfig?.groups_max_age ?? '', oidc?.name ?? 'it')
      }
      if (!changes) return redirectToSignIn(req, reply, oidc !== undefined)
      // A change without a session is a failed authentication, counted per address.
      const admission = failedAuth.admit(req.ip)
      if (!admission.ok) {
        reply.header('retry-after', String(admission.retryAfterSeconds))
        throw new FailedAuthLimited(admission.retryAfterSeconds)
      }
      failedAuth.failed(req.ip)
      throw new SessionEnded()
    })

    ui.setErrorHandler(async (err: FastifyError, req, reply) => {
      let e: { code: string, message: string, statusCode: number } = { code: err.code ?? 'WRIT_ERR_INTERNAL', message: err.message, statusCode: err.statusCode ?? 500 }
      if (err.code === 'FST_CSRF_INVALID_TOKEN' || err.code === 'FST_CSRF_MISSING_SECRET') {
        const c = new CsrfRejected()
        e = { code: c.code, message: c.message, statusCode: c.statusCode ?? 403 }
      } else if (!e.code.startsWith('WRIT_ERR_')) {
        if (e.statusCode >= 500) req.log.error({ err }, 'portal request failed')
        e = e.statusCode >= 500 ? { code: 'WRIT_ERR_INTERNAL', message: 'internal error', statusCode: 500 } : { code: 'WRIT_ERR_BAD_REQUEST', message: err.message, statusCode: e.statusCode }
      }
      // Refused changes are on the record; a page that failed to open is not (a GET changes nothing).
      if (req.method === 'POST' && req.principal && e.statusCode >= 400 && e.statusCode < 500 && e.statusCode !== 429) {
        await auditRejection(req, e.code, e.message, undefined).catch((auditErr: unknown) => req.log.error({ err: auditErr }, 'cannot audit a refused portal request'))
      }
      const hint = detailsOf(err)?.hint
      const heading = e.code === 'WRIT_ERR_NOT_CONFIGURED' ? 'Not set up here' : e.statusCode === 404 ? 'Not found' : e.statusCode >= 500 ? 'Something went wrong' : 'Refused'
      return pages.page(req, reply, '@error', { title: heading }, { heading, code: e.code, message: e.message, hint: typeof hint === 'string' ? hint : '' }, e.statusCode)
    })
    // Every path under /ui answers with a page a person can go on from, an unknown one too (never the API's JSON).
    ui.setNotFoundHandler(async (req) => {
      throw new PageNotFound((req.url.split('?')[0] ?? '').slice(0, 200))
    })

    for (const asset of [ASSETS.css, ASSETS.js, ASSETS.passkeys]) {
      ui.get(asset.path.slice('/ui'.length), async (_req, reply) => reply
        .header('cache-control', 'public, max-age=31536000, immutable').header('etag', asset.etag)
        .type(asset.path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8').send(asset.body))
    }
    await ui.register(signInRoutes, { pages, links, sessions, limits, failedAuth, tokenSignIn: config.portal.token_sign_in, ssoName: oidc?.name })
    if (oidc) await ui.register(oidcRoutes, { pages, oidc, sessions, limits, tokenSignIn: config.portal.token_sign_in })
    if (passkeys) await ui.register(passkeyPageRoutes, { pages, passkeys })
    if (opts.oauth) await ui.register(oauthPageRoutes, { pages, oauth: opts.oauth })
    await ui.register(unconfiguredRoutes, { passkeys: passkeys !== undefined, sso: oidc !== undefined, oauth: opts.oauth !== undefined })
    await ui.register(listPageRoutes, { pages })
    await ui.register(freezePageRoutes, { pages, brakes: root.writ.brakes, principals: root.writ.principals })
    await ui.register(runPageRoutes, { pages })
    await ui.register(grantPageRoutes, { pages, grants: root.writ.grants, approvals, store: root.writ.store, passkeys })
    await ui.register(reviewPageRoutes, { pages, breakGlass: root.writ.breakGlass })
    await ui.register(planPageRoutes, { pages, plans: root.writ.plans, catalog: root.writ.catalog, passkeys, runs: root.writ.store })
    await ui.register(liveSocket, { allowedOrigins: ownOrigins, sessions })
  }, { prefix: '/ui' })
}, { name: 'writ-portal', dependencies: ['writ-control-plane'] })
