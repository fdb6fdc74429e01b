/**
 * The Grants page (a GET, reads only) and its forms: revoke, co-sign, and the
 * run page's "Approve and allow this for 1 h" — which approves the run through
 * the one approval service (its binding, as shown), then gives its requester a
 * one-hour grant for exactly this action, node and arguments. Where the
 * approver registry gates the action, each approval is the operator's passkey
 * over the grant's digest: the page's script signs it (the same script as a
 * run's approve form), and "Approve and allow" leads to the grant to sign once
 * it exists. Every form is a POST from a signed-in operator with the
 * session's CSRF token; a refusal is shown with its typed code and audited by
 * the portal's error handler.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GRANT_ID_RE } from '@writ/packs/protocol'
import { bindingChallenge } from '@writ/packs/approvers'
import type { ApprovalService } from '../approvals/index.js'
import type { GrantService, ShownGrant } from '../grants/index.js'
import type { Passkeys } from '../passkeys/index.js'
import { RunNotFound } from '../http/index.js'
import { RunIdParamsSchema, type RunStore } from '../runs/index.js'
import type { PageRenderer } from './page-render.js'
import { readPasskeyField } from './decision-form.js'
import { formIssues, invalidForm } from './form-refusal.js'

const GrantParams = z.object({ id: z.string().regex(GRANT_ID_RE, 'expected a grant id') }).strict()
const CsrfOnly = z.object({ _csrf: z.string().optional() }).strict()
const PasskeyField = z.string().max(16 * 1024).optional()
const CosignForm = z.object({ _csrf: z.string().optional(), digest: z.string().regex(/^[0-9a-f]{64}$/), passkey: PasskeyField }).strict()
const ApproveAndGrantForm = z.object({
  _csrf: z.string().optional(), binding: z.string().regex(/^[0-9a-f]{64}$/), comment: z.string().trim().max(2000).optional(), passkey: PasskeyField,
}).strict()

/** How long "Approve and allow this" allows it. */
const ONE_HOUR = '1h'

const TONES: Record<string, string> = { active: 'ok', pending: 'wait', revoked: 'bad' }

const FLASHES: Record<string, string> = {
  revoked: 'The grant is revoked: it covers nothing from the next request on.',
  approved: 'Your approval of the grant is recorded.',
  sign: 'Your approval of the run is recorded. The grant for the next hour waits for passkey signatures over its digest (the approver registry asks for them): sign it below.',
}

export default async function grantPageRoutes(
  app: FastifyInstance, opts: { pages: PageRenderer, grants: GrantService, approvals: ApprovalService, store: RunStore, passkeys: Passkeys | undefined },
) {
  const { pages, grants, approvals, store, passkeys } = opts

  /** What a pending grant's sign form needs from the viewer: the challenge (its digest) and their published passkeys. */
  function signing(g: ShownGrant, viewer: string) {
    if (!g.passkey_required || g.status !== 'pending' || !passkeys) return undefined
    const ids = passkeys.publishedCredentials(viewer).map((a) => a.credential_id)
    return { challenge: bindingChallenge(g.digest), rpId: passkeys.registry?.relying_party.id ?? passkeys.rp.id, credentials: ids.join(' '), has: ids.length > 0 }
  }

  app.get('/grants', async (req, reply) => {
    const viewer = req.principal!.id
    const shown = (await grants.list()).map((g) => ({
      ...g, tone: TONES[g.status] ?? '', sign: signing(g, viewer), mine: g.approvals.some((a) => a.by === viewer),
      args: g.args === 'any' ? 'any arguments' : Object.entries(g.args).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('  ') || 'no arguments',
    }))
    const done = (req.query as { done?: unknown }).done
    const flash = typeof done === 'string' ? FLASHES[done] : undefined
    const passkeyScript = shown.some((g) => g.sign?.has)
    return pages.page(req, reply, '@grants', { title: 'Grants', nav: 'grants', passkeyScript }, { grants: shown, ...(flash ? { flash } : {}) })
  })

  const grantId = (params: unknown): string => {
    const p = GrantParams.safeParse(params)
    if (!p.success) throw invalidForm('expected a grant id')
    return p.data.id
  }

  app.post('/grants/:id/revoke', { preHandler: app.csrfProtection }, async (req, reply) => {
    const id = grantId(req.params)
    if (!CsrfOnly.safeParse(req.body ?? {}).success) throw invalidForm('form: unexpected fields')
    await grants.revoke(req.principal!, id, undefined)
    return reply.redirect('/ui/grants?done=revoked', 303)
  })

  app.post('/grants/:id/approve', { preHandler: app.csrfProtection }, async (req, reply) => {
    const id = grantId(req.params)
    const form = CosignForm.safeParse(req.body)
    if (!form.success) throw invalidForm('digest: the form did not carry the grant\'s digest')
    await grants.approve(req.principal!, id, form.data.digest, readPasskeyField(form.data.passkey))
    return reply.redirect('/ui/grants?done=approved', 303)
  })

  app.post('/runs/:id/approve-and-grant', { preHandler: app.csrfProtection }, async (req, reply) => {
    const parsed = RunIdParamsSchema.safeParse(req.params)
    if (!parsed.success) throw new RunNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const id = parsed.data.id
    const form = ApproveAndGrantForm.safeParse(req.body)
    if (!form.success) throw invalidForm(formIssues(form.error))
    const hit = await store.get(id)
    if (!hit) throw new RunNotFound(id)
    const run = hit.run
    const passkey = readPasskeyField(form.data.passkey)
    // The run as the page showed it (its binding) is approved first; only then is the same request allowed for an hour.
    await approvals.decide(req.principal!, id, { decision: 'approve', binding: form.data.binding, ...(form.data.comment ? { comment: form.data.comment } : {}), ...(passkey ? { passkey } : {}) })
    const grant = await grants.create(req.principal!, {
      principal: run.requester.id, action: run.action, node: run.node_id, args: run.args, expires_in: ONE_HOUR,
      reason: `approved run ${run.id} and allowed the same for 1 h: ${run.reason}`.slice(0, 2000),
    })
    // Under the approver registry the grant's digest exists only now: its approvers sign it on the Grants page.
    if (grant.passkey_required) return reply.redirect(`/ui/grants?done=sign#grant-${grant.id}`, 303)
    return reply.redirect(`/ui/runs/${encodeURIComponent(id)}?done=1`, 303)
  })
}
