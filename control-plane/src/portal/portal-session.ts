/**
 * The portal's stateless session: an encrypted, authenticated cookie
 * (@fastify/secure-session) holding who signed in, how and when, so any
 * replica serves any operator. Every sign-in method ends in `signIn`.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal, PrincipalRegistry } from '../auth/index.js'

declare module '@fastify/secure-session' {
  interface SessionData {
    operator: string
    via: string
    at: string
    /** Groups the identity provider gave (portal.oidc.groups_claim); replaces the configured ones for this session. */
    groups: string[]
    /** A single sign-on under way: what the callback must match, and where to go after. */
    oidc: { state: string, nonce: string, verifier: string, next: string, started: number }
    /** The challenge of a passkey registration under way. */
    passkeyChallenge: { challenge: string, started: number }
  }
}

export class PortalConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'PortalConfigError' }
}

/** The session key: 32 bytes from the configured file (64 hex characters), or a fresh one that lives as long as the process. */
export function sessionKey(file: string | undefined): { key: Buffer, ephemeral: boolean } {
  if (!file) return { key: randomBytes(32), ephemeral: true }
  let text: string
  try { text = readFileSync(file, 'utf8').trim() } catch (err) {
    throw new PortalConfigError(`cannot read the portal session key (setting portal.session_key_file): ${file}`, { cause: err })
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new PortalConfigError(`portal.session_key_file ${file} must hold 32 bytes as 64 hex characters (writ keys session --out FILE writes one)`)
  return { key: Buffer.from(text, 'hex'), ephemeral: false }
}

/** The operator signed in on this request, if the session names one the config still has. */
export function sessionOperator(req: FastifyRequest, principals: PrincipalRegistry): Principal | undefined {
  const id = req.session.get('operator')
  if (!id) return undefined
  const p = principals.get(id)
  if (!p || p.kind !== 'operator') return undefined
  const groups = req.session.get('groups')
  return groups ? { ...p, groups } : p
}

/** Signs `operator` in; `groups`, when given, are the identity provider's and replace the configured ones. */
export function signIn(req: FastifyRequest, operator: Principal, via: string, groups?: string[]): void {
  // A new session on sign-in: nothing from before (a CSRF secret included) carries over.
  req.session.regenerate()
  req.session.set('operator', operator.id)
  req.session.set('via', via)
  req.session.set('at', new Date().toISOString())
  if (groups) req.session.set('groups', groups)
}

export function signOut(req: FastifyRequest): void { req.session.delete() }

/** Only paths inside the portal are followed after sign-in (no open redirect). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/ui(\/[A-Za-z0-9/_.?=&%-]*)?$/.test(next) && !next.startsWith('//') ? next : '/ui'
}

/** Sends a signed-out operator to sign in — straight to the identity provider when single sign-on is set up — and back to `req.url` after. */
export function redirectToSignIn(req: FastifyRequest, reply: FastifyReply, singleSignOn = false): FastifyReply {
  return reply.redirect(`${singleSignOn ? '/ui/sign-in/oidc' : '/ui/sign-in'}?next=${encodeURIComponent(safeNext(req.url))}`, 303)
}
