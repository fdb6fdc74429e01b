/**
 * The run page and the decision forms. The page is a GET and only reads; a
 * decision is a POST from a signed-in operator with the session's CSRF token
 * and the binding digest the page showed, through the one approval service.
 * A refused decision shows the page again with the typed reason, and is
 * audited; it changes nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { parsePlanRunId } from '@writ/packs/protocol'
import { bindingChallenge } from '@writ/packs/approvers'
import { RunIdParamsSchema, type Run } from '../runs/index.js'
import { RunNotFound } from '../http/index.js'
import { formIssues, formRefusal, invalidForm } from './form-refusal.js'
import type { Principal } from '../auth/index.js'
import { readDecisionForm, readPasskeyField } from './decision-form.js'
import type { PageRenderer } from './page-render.js'
import { breakGlassPhrase, runView } from './run-view.js'

/** The form field an error message is about: validation and unsafe-text messages start with the field's name. */
function fieldOf(message: string): 'comment' | 'reason' | undefined {
  const m = /^(comment|reason)\b/.exec(message)
  return m ? m[1] as 'comment' | 'reason' : undefined
}

/** What the break-glass form needs beyond the phrase: the passkey to sign with, or why it cannot be done here. */
interface BreakGlassNeeds { passkeyNeeded: boolean, notAllowed?: string, passkey?: { challenge: string, rpId: string, credentials: string } }

/** The break-glass confirmation: the reason, and the box that names the action and node. */
const BreakGlassForm = z.object({
  _csrf: z.string().optional(), binding: z.string().regex(/^[0-9a-f]{64}$/), reason: z.string().trim().min(1, 'say why the quorum cannot be reached').max(2000),
  confirm: z.string().max(600).optional(),
  /** The operator's passkey assertion over the binding (JSON), where the approver registry asks for one. */
  passkey: z.string().max(16 * 1024).optional(),
}).strict()

export default async function runPageRoutes(app: FastifyInstance, opts: { pages: PageRenderer }) {
  const { store, catalog, approvals, passkeys, breakGlass } = app.writ
  const { pages } = opts

  /** What the approve form needs when the run must be approved with a passkey. */
  function passkeyView(run: Run, viewer: Principal) {
    const need = run.status === 'pending_approval' && run.approval ? approvals.passkeyRequirement(run) : undefined
    if (!need || !run.approval || !passkeys) return undefined
    const ids = passkeys.publishedCredentials(viewer.id).map((a) => a.credential_id)
    return { challenge: bindingChallenge(run.approval.binding), rpId: passkeys.registry?.relying_party.id ?? passkeys.rp.id, credentials: ids.join(' '), has: ids.length > 0, groups: need.groups.join(', '), quorum: need.quorum }
  }

  /**
   * The break-glass form's needs: where the registry asks for passkeys, the
   * viewer's passkey signs the binding (the challenge and their published
   * credentials), and a registry quorum above one must allow break-glass.
   */
  function breakGlassView<T extends object>(run: Run, viewer: Principal, base: T): T & BreakGlassNeeds {
    const need = approvals.passkeyRequirement(run)
    if (!need || !run.approval) return { ...base, passkeyNeeded: false }
    if (need.quorum > 1 && need.break_glass !== true) return { ...base, passkeyNeeded: true, notAllowed: `the approver registry (${need.rule}) asks ${need.quorum} passkey approvals and does not allow break-glass for this action` }
    const ids = passkeys ? passkeys.publishedCredentials(viewer.id).map((a) => a.credential_id) : []
    return {
      ...base, passkeyNeeded: true,
      ...(ids.length > 0 && passkeys ? { passkey: { challenge: bindingChallenge(run.approval.binding), rpId: passkeys.registry?.relying_party.id ?? passkeys.rp.id, credentials: ids.join(' ') } } : {}),
    }
  }

  async function show(req: FastifyRequest, reply: FastifyReply, id: string, extra: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
    const hit = await store.get(id)
    // A plan's target is shown on its plan's page.
    const target = hit ? undefined : parsePlanRunId(id)
    if (target) return reply.redirect(`/ui/plans/${encodeURIComponent(target.planId)}?q=#t-${target.position}`, 303)
    if (!hit) throw new RunNotFound(id)
    const view = await runView(hit.run, req.principal!, store, catalog)
    const passkey = passkeyView(hit.run, req.principal!)
    const glass = view.breakGlass ? breakGlassView(hit.run, req.principal!, view.breakGlass) : undefined
    const passkeyScript = (passkey?.has ?? false) || glass?.passkey !== undefined
    return pages.page(req, reply, '@run', { title: view.summary, liveRun: { id, status: hit.run.status }, passkeyScript }, { ...view, breakGlass: glass, passkey, ...extra }, status)
  }

  app.get('/runs/:id', async (req, reply) => {
    const parsed = RunIdParamsSchema.safeParse(req.params)
    if (!parsed.success) throw new RunNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const flash = typeof (req.query as { done?: unknown }).done === 'string' ? 'Your decision is recorded.' : undefined
    return show(req, reply, parsed.data.id, flash ? { flash } : {})
  })

  async function decide(req: FastifyRequest, reply: FastifyReply, verb: 'approve' | 'deny'): Promise<FastifyReply> {
    const parsed = RunIdParamsSchema.safeParse(req.params)
    if (!parsed.success) throw new RunNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const id = parsed.data.id
    try {
      await approvals.decide(req.principal!, id, readDecisionForm(verb, req.body, 'the run'))
    } catch (err) {
      const e = await formRefusal(req, err, 'decision', { run_id: id }, ['WRIT_ERR_RUN_NOT_FOUND'])
      // An error about one field is shown next to it (the deny form opens to show its reason's).
      return show(req, reply, id, { error: { code: e.code, message: e.message, field: fieldOf(e.message) } }, e.statusCode)
    }
    // Post/redirect/get: a reload of the result page does not post the decision again.
    return reply.redirect(`/ui/runs/${encodeURIComponent(id)}?done=1`, 303)
  }

  // The whole output, as the runner returned it (the page shows a part): plain text, a download, never rendered.
  app.get('/runs/:id/output', async (req, reply) => {
    const parsed = RunIdParamsSchema.safeParse(req.params)
    if (!parsed.success) throw new RunNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const hit = await store.get(parsed.data.id)
    if (!hit) throw new RunNotFound(parsed.data.id)
    const stream = (req.query as { stream?: unknown }).stream === 'stderr' ? 'stderr' : 'stdout'
    return reply.header('cache-control', 'no-store').header('content-disposition', `attachment; filename="${hit.run.id}-${stream}.txt"`)
      .type('text/plain; charset=utf-8').send(hit.run.result?.[stream] ?? '')
  })

  app.post('/runs/:id/approve', { preHandler: app.csrfProtection }, (req, reply) => decide(req, reply, 'approve'))
  // Break-glass from the page: the box must name this run's action and node, so nobody runs something alone by a stray click.
  app.post('/runs/:id/break-glass', { preHandler: app.csrfProtection }, async (req, reply) => {
    const parsed = RunIdParamsSchema.safeParse(req.params)
    if (!parsed.success) throw new RunNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const id = parsed.data.id
    try {
      const form = BreakGlassForm.safeParse(req.body)
      if (!form.success) throw invalidForm(formIssues(form.error))
      const hit = await store.get(id)
      if (!hit) throw new RunNotFound(id)
      const phrase = breakGlassPhrase(hit.run)
      if (form.data.confirm !== phrase) {
        throw invalidForm(`confirm: tick the box that names what runs alone (${phrase})`)
      }
      const passkey = readPasskeyField(form.data.passkey)
      await breakGlass.run(req.principal!, id, { reason: form.data.reason, binding: form.data.binding, ...(passkey ? { passkey } : {}) })
    } catch (err) {
      const e = await formRefusal(req, err, 'break-glass', { run_id: id, break_glass: true }, ['WRIT_ERR_RUN_NOT_FOUND'])
      return show(req, reply, id, { error: { code: e.code, message: e.message, field: 'break-glass' } }, e.statusCode)
    }
    return reply.redirect(`/ui/runs/${encodeURIComponent(id)}?done=1`, 303)
  })
  app.post('/runs/:id/deny', { preHandler: app.csrfProtection }, (req, reply) => decide(req, reply, 'deny'))
}
