/**
 * The portal's session: an encrypted, authenticated cookie
 * (@fastify/secure-session) holding who signed in, how and when, and the id
 * of its server-side record (session-store.ts), so any replica serves any
 * operator and a sign-out anywhere ends it everywhere. A session ends
 * `portal.session_ttl` after sign-in, however busy it was: the cookie's own
 * timestamp moves with every write, so it is never what decides. Every
 * sign-in method ends in `signIn`.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import type { PortalSessions } from './session-store.js'

declare module '@fastify/secure-session' {
  interface SessionData {
    operator: string
    via: string
    /** When the operator signed in (ms since the epoch); the session ends `portal.session_ttl` after it. */
    signed_in_at: number
    /** The server-side session id (session-store.ts). */
    sid: string
    /** Groups the identity provider gave (portal.oidc.groups_claim, within allowed_groups); replace the configured ones for this session. */
    groups: string[]
    /** When the provider last gave those groups (ms since the epoch); older than portal.oidc.groups_max_age, they are read again. */
    groups_at: number
    /** The challenge of a passkey registration under way. */
    passkeyChallenge: { challenge: string, started: number }
  }
}

/** How long sessions and the provider's groups last. */
export interface SessionLimits {
  ttlMs: number
  /** Set when groups come from the identity provider (portal.oidc.groups_claim). */
  groupsMaxAgeMs?: number | undefined
}

/** What the cookie on a request amounts to. */
export type SessionState =
  | { kind: 'none' }
  | { kind: 'signed_in', principal: Principal, sid: string, expiresAt: number }
  /** Signed in, but the provider's groups are older than groups_max_age: read them again before deciding anything. */
  | { kind: 'groups_stale', principal: Principal, sid: string }
  /** The cookie names a session that is over: past its TTL, signed out, or an operator the config no longer has. */
  | { kind: 'ended', why: string }

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

/** Reads the session on this request: who is signed in, checked against the server-side record and the limits. */
export async function readSession(req: FastifyRequest, principals: PrincipalRegistry, sessions: PortalSessions, limits: SessionLimits): Promise<SessionState> {
  const id = req.session.get('operator')
  if (!id) return { kind: 'none' }
  const sid = req.session.get('sid')
  const signedInAt = req.session.get('signed_in_at')
  // A cookie from before server-side sessions, or one that says nothing of when it began, is over.
  if (typeof sid !== 'string' || typeof signedInAt !== 'number') return { kind: 'ended', why: 'the session has no server-side record' }
  const expiresAt = signedInAt + limits.ttlMs
  if (Date.now() >= expiresAt) return { kind: 'ended', why: 'the session is older than portal.session_ttl' }
  const p = principals.get(id)
  if (!p || p.kind !== 'operator') return { kind: 'ended', why: `operator ${id} is not configured any more` }
  if (!await sessions.isLive(sid, id)) return { kind: 'ended', why: 'the session was signed out' }
  const groups = req.session.get('groups')
  // Groups from the provider count only while the config takes groups from it.
  if (!groups || limits.groupsMaxAgeMs === undefined) return { kind: 'signed_in', principal: p, sid, expiresAt }
  const groupsAt = req.session.get('groups_at') ?? 0
  if (limits.groupsMaxAgeMs !== undefined && Date.now() - groupsAt >= limits.groupsMaxAgeMs) return { kind: 'groups_stale', principal: p, sid }
  return { kind: 'signed_in', principal: { ...p, groups }, sid, expiresAt }
}

/**
 * Signs `operator` in; `groups`, when given, are the identity provider's and
 * replace the configured ones. A session this browser had before ends on
 * every replica.
 */
export async function signIn(req: FastifyRequest, sessions: PortalSessions, limits: SessionLimits, operator: Principal, via: string, groups?: string[]): Promise<void> {
  const previous = req.session.get('sid')
  if (typeof previous === 'string') await sessions.revoke(previous)
  // A new session on sign-in: nothing from before (a CSRF secret included) carries over.
  req.session.regenerate()
  const now = Date.now()
  const sid = await sessions.create(operator.id, via, now, now + limits.ttlMs)
  req.session.set('operator', operator.id)
  req.session.set('via', via)
  req.session.set('signed_in_at', now)
  req.session.set('sid', sid)
  if (groups) {
    req.session.set('groups', groups)
    req.session.set('groups_at', now)
  }
}

/** Ends this browser's session here and on every replica. */
export async function signOut(req: FastifyRequest, sessions: PortalSessions): Promise<void> {
  const sid = req.session.get('sid')
  if (typeof sid === 'string') await sessions.revoke(sid)
  req.session.delete()
}

/** Only paths inside the portal are followed after sign-in (no open redirect). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/ui(\/[A-Za-z0-9/_.?=&%-]*)?$/.test(next) && !next.startsWith('//') ? next : '/ui'
}

/** Sends a signed-out operator to sign in — straight to the identity provider when single sign-on is set up — and back to `req.url` after. */
export function redirectToSignIn(req: FastifyRequest, reply: FastifyReply, singleSignOn = false): FastifyReply {
  return reply.redirect(`${singleSignOn ? '/ui/sign-in/oidc' : '/ui/sign-in'}?next=${encodeURIComponent(safeNext(req.url))}`, 303)
}
