/**
 * The operator's passkeys page: what they registered, whether the published
 * approver registry holds it yet, registering another (WebAuthn in the
 * browser, verified here against the challenge kept in the session), and
 * removing one not wanted any more. Registering is audited; it approves
 * nothing until an administrator publishes the registry.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { describePasskeyGate } from '@writ/packs/approvers'
import { registrationOptions, verifyRegistration, type Passkeys } from '../passkeys/index.js'
import { RegistrationResponseSchema } from '../passkeys/passkey-registration.js'
import type { PageRenderer } from './page-render.js'

const CHALLENGE_MS = 5 * 60_000
const RegisterForm = z.object({ _csrf: z.string().optional(), label: z.string().trim().max(100).optional(), response: z.string().min(1).max(64 * 1024) }).strict()
const RemoveForm = z.object({ _csrf: z.string().optional(), credential_id: z.string().regex(/^[A-Za-z0-9_-]{1,1400}$/) }).strict()

export default async function passkeyPageRoutes(app: FastifyInstance, opts: { pages: PageRenderer, passkeys: Passkeys }) {
  const { audit } = app.writ
  const { pages, passkeys } = opts

  async function show(req: Parameters<typeof pages.page>[0], reply: Parameters<typeof pages.page>[1], extra: Record<string, unknown> = {}, status = 200) {
    const me = req.principal!
    const published = new Set(passkeys.publishedCredentials(me.id).map((a) => a.credential_id))
    const registry = passkeys.registry
    const mine = (await passkeys.store.listFor(me.id)).map((r) => ({ ...r, short: `${r.credential_id.slice(0, 16)}…`, published: published.has(r.credential_id) }))
    return pages.page(req, reply, '@passkeys', { title: 'Passkeys', nav: 'passkeys', passkeyScript: true }, {
      mine, rpId: passkeys.rp.id, groups: me.groups.join(', ') || 'none',
      registry: registry
        ? { issued_at: registry.issued_at, serial: registry.serial ?? 0, expires_at: registry.expires_at, gate: describePasskeyGate(registry.require), groups: registry.require.default.groups.join(', ') }
        : undefined,
      ...extra,
    }, status)
  }

  app.get('/passkeys', async (req, reply) => {
    const q = req.query as { registered?: unknown, removed?: unknown }
    return show(req, reply, q.registered !== undefined ? { flash: 'Passkey registered. It can sign approvals once an administrator publishes the approver registry.' } : q.removed !== undefined ? { flash: 'Passkey removed from your registrations.' } : {})
  })

  // The browser asks for registration options; the challenge stays in the (encrypted) session.
  app.post('/passkeys/options', { preHandler: app.csrfProtection }, async (req, reply) => {
    const me = req.principal!
    const options = await registrationOptions(passkeys.rp, me, await passkeys.store.listFor(me.id))
    req.session.set('passkeyChallenge', { challenge: options.challenge, started: Date.now() })
    return reply.header('cache-control', 'no-store').send(options)
  })

  app.post('/passkeys', { preHandler: app.csrfProtection }, async (req, reply) => {
    const me = req.principal!
    const pending = req.session.get('passkeyChallenge')
    req.session.set('passkeyChallenge', undefined)
    const form = RegisterForm.safeParse(req.body)
    let response: unknown
    try { response = form.success ? JSON.parse(form.data.response) : undefined } catch { response = undefined }
    const parsed = RegistrationResponseSchema.safeParse(response)
    if (!form.success || !parsed.success) return show(req, reply, { error: 'The browser did not send a passkey registration. Try again; registering a passkey needs JavaScript.' }, 400)
    if (!pending || Date.now() - pending.started > CHALLENGE_MS) return show(req, reply, { error: 'This registration was not started here or took longer than 5 minutes. Try again.' }, 400)
    const verified = await verifyRegistration(passkeys.rp, parsed.data, pending.challenge)
    if (!verified.ok) {
      req.log.warn({ operator: me.id }, `passkey registration refused: ${verified.message}`)
      return show(req, reply, { error: `The passkey could not be registered: ${verified.message}` }, 400)
    }
    const r = verified.registration
    const registration = {
      ...r, operator: me.id, groups: [...me.groups], label: form.data.label || 'passkey', registered_at: new Date().toISOString(),
      signed_in_via: req.session.get('via') ?? 'unknown',
    }
    if (!await passkeys.store.add(registration)) return show(req, reply, { error: 'That passkey is registered already.' }, 409)
    await audit.append({ type: 'passkey.registered', actor: { id: me.id, kind: 'operator' }, data: { credential_id: r.credential_id, label: registration.label, groups: registration.groups, aaguid: r.aaguid, via: registration.signed_in_via } })
    req.log.info({ operator: me.id, credential: r.credential_id.slice(0, 16) }, 'passkey registered')
    return reply.redirect('/ui/passkeys?registered=1', 303)
  })

  app.post('/passkeys/remove', { preHandler: app.csrfProtection }, async (req, reply) => {
    const me = req.principal!
    const form = RemoveForm.safeParse(req.body)
    if (!form.success || !await passkeys.store.remove(me.id, form.data.credential_id)) return show(req, reply, { error: 'You have no registered passkey with that id.' }, 404)
    await audit.append({ type: 'passkey.removed', actor: { id: me.id, kind: 'operator' }, data: { credential_id: form.data.credential_id } })
    return reply.redirect('/ui/passkeys?removed=1', 303)
  })
}
