/**
 * The plan page and its one decision. The page is a GET and only reads (the
 * target list is searched with a GET too); approving or denying is a POST
 * from a signed-in operator with the CSRF token and the binding the page
 * showed — the plan binding over its root, so the decision covers exactly
 * the frozen targets — through the plans' approval rules. A run page of a
 * plan's target leads here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { bindingChallenge } from '@writ/packs/approvers'
import type { PackCatalog } from '@writ/packs'
import { PlanNotFound } from '../http/index.js'
import { formRefusal } from './form-refusal.js'
import type { Principal } from '../auth/index.js'
import type { Passkeys } from '../passkeys/index.js'
import { redactArgs, sensitiveArgNames, type RunStore } from '../runs/index.js'
import type { Plan, Plans, PlanState, PlanView } from '../plans/index.js'
import type { PageRenderer } from './page-render.js'
import { previewOf, type PreviewView } from './preview-view.js'
import { readDecisionForm } from './decision-form.js'
import { timeLeft } from './time-text.js'

const Params = z.object({ id: z.string().regex(/^p[0-9a-z]{9}[0-9a-f]{8}$/) }).strict()
const Query = z.object({ q: z.string().max(256).optional(), done: z.string().optional() }).strict()
const SHOWN_TARGETS = 200
const STATUS_LABEL: Record<string, string> = {
  pending_approval: 'Waiting for approval', running: 'Rolling out', succeeded: 'Succeeded', partially_failed: 'Partly failed', failed: 'Failed',
  halted: 'Halted', denied: 'Denied', expired: 'Expired',
}

/** How far a plan has got, as the live socket words it too: targets dispatched or done / targets done. */
export function progressToken(view: Pick<PlanView, 'groups' | 'counts'>): string {
  const done = view.groups.reduce((n, g) => n + g.count, 0)
  return `${done + (view.counts.running ?? 0)}/${done}`
}

export interface PlanPageOptions { pages: PageRenderer, plans: Plans, catalog: PackCatalog, passkeys: Passkeys | undefined, runs: RunStore }

export default async function planPageRoutes(app: FastifyInstance, opts: PlanPageOptions) {
  const { pages, plans, catalog, passkeys, runs } = opts

  /** The sampled targets' impact previews, while the plan waits for its decision and after (as history). */
  async function previews(plan: Plan, state: PlanState): Promise<Array<{ node: string, position: number, view: PreviewView }> | undefined> {
    if (!state.preview) return undefined
    return Promise.all(state.preview.map(async (e) => ({ node: e.node, position: e.position, view: await previewOf(e, plan.targets[e.position]?.args ?? {}, runs) })))
  }

  function decisionFor(p: Principal, plan: Plan, state: PlanState): { allowed: boolean, whyNot: string } | undefined {
    const a = plan.approval
    if (!a || state.status !== 'pending_approval') return undefined
    if (p.id === plan.requester.id || p.person === (plan.requester_person ?? plan.requester.id)) return { allowed: false, whyNot: 'You requested this plan; someone else decides it.' }
    if (!p.groups.some((g) => a.approver_groups.includes(g))) return { allowed: false, whyNot: `Only ${a.approver_groups.join(', ')} decide this plan.` }
    if (state.approvals.some((x) => x.by === p.id || x.person === p.person)) return { allowed: false, whyNot: 'You approved it already; it waits for others.' }
    return { allowed: true, whyNot: '' }
  }

  function passkeyView(plan: Plan, state: PlanState, viewer: Principal) {
    const need = state.status === 'pending_approval' && plan.approval ? passkeys?.requirement(plan.action, plan.risk) : undefined
    if (!need || !plan.approval || !passkeys) return undefined
    const ids = passkeys.publishedCredentials(viewer.id).map((a) => a.credential_id)
    return { challenge: bindingChallenge(plan.approval.binding), rpId: passkeys.registry?.relying_party.id ?? passkeys.rp.id, credentials: ids.join(' '), has: ids.length > 0 }
  }

  async function show(req: FastifyRequest, reply: FastifyReply, id: string, extra: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
    const viewer = req.principal as Principal
    const { plan, state } = await plans.service.get(viewer, id)
    const view: PlanView = await plans.view(viewer, id, { nodesPerGroup: 50 })
    const q = Query.safeParse(req.query).data?.q?.trim() ?? ''
    const matching = (view.targets ?? []).map((x, position) => ({ ...x, position })).filter((x) => q === '' || x.node.includes(q))
    const hit = catalog.lookup(plan.action)
    const spec = hit.ok ? hit.action.spec : undefined
    const first = redactArgs(plan.targets[0]?.args ?? {}, sensitiveArgNames(catalog, plan.action))
    const perTarget = plan.targets.some((t) => JSON.stringify(t.args) !== JSON.stringify(plan.targets[0]?.args))
    const r = plan.rollout
    const a = plan.approval
    const counts = Object.entries(view.counts).filter(([k]) => k !== 'targets').map(([k, n]) => `${n} ${k.replace('_', ' ')}`).join(' · ')
    return pages.page(req, reply, '@plan', { title: `Plan: ${plan.action} on ${plan.targets.length} nodes`, passkeyScript: passkeyView(plan, state, viewer)?.has ?? false, refreshSeconds: state.status === 'running' ? 3 : undefined, livePlan: { id: plan.id, status: state.status, progress: progressToken(view) } }, {
      view, statusLabel: STATUS_LABEL[state.status] ?? state.status, counts,
      action: { title: spec?.title ?? plan.action, risk: plan.risk, side_effects: spec?.side_effects ?? [] },
      plan: {
        id: plan.id, action: plan.action, count: plan.targets.length, requester: `${plan.requester.id} (${plan.requester.kind})`, session_id: plan.session_id,
        reason: plan.reason, expected: plan.expected, selector: plan.selector, named: `${plan.nodes?.length ?? 0} node(s)`, root: plan.root, excluded: plan.excluded,
        args: Object.entries(first).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]), perTarget,
        ...(plan.grant ? { grant: { id: plan.grant.id, uses: plan.grant.uses, approvedBy: plan.grant.signed.statement.approvals.map((x) => x.by).join(', ') } } : {}),
        rollout: `batches of ${r.batch}, ${r.max_concurrency} at a time, ${r.max_errors === null ? 'no error budget' : `halts after ${r.max_errors} failure(s)`}${r.canary ? `, the first batch as a canary then a ${Math.round(r.pause_ms / 1000)} s pause` : ''}`,
      },
      approval: a ? {
        ...a, groups: a.approver_groups.join(', '), approvals: state.approvals, denial: state.denial, approved_at: state.approved_at,
        open: state.status === 'pending_approval' && Date.parse(a.expires_at) > Date.now(),
        timeLeft: timeLeft(a.expires_at),
      } : undefined,
      decision: decisionFor(viewer, plan, state), passkey: passkeyView(plan, state, viewer),
      previews: await previews(plan, state), gatedCount: plan.targets.filter((t) => t.policy.decision === 'require_approval').length,
      targets: matching.slice(0, SHOWN_TARGETS), moreTargets: Math.max(0, matching.length - SHOWN_TARGETS), q, ...extra,
    }, status)
  }

  app.get('/plans/:id', async (req, reply) => {
    const parsed = Params.safeParse(req.params)
    if (!parsed.success) throw new PlanNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const flash = typeof (req.query as { done?: unknown }).done === 'string' ? 'Your decision is recorded.' : undefined
    return show(req, reply, parsed.data.id, flash ? { flash } : {})
  })

  async function decide(req: FastifyRequest, reply: FastifyReply, verb: 'approve' | 'deny'): Promise<FastifyReply> {
    const parsed = Params.safeParse(req.params)
    if (!parsed.success) throw new PlanNotFound(String((req.params as { id?: unknown }).id ?? '').slice(0, 64))
    const id = parsed.data.id
    try {
      await plans.decide(req.principal as Principal, id, readDecisionForm(verb, req.body, 'the plan'))
    } catch (err) {
      const e = await formRefusal(req, err, 'decision', { plan_id: id }, ['WRIT_ERR_PLAN_NOT_FOUND'])
      return show(req, reply, id, { error: { code: e.code, message: e.message } }, e.statusCode)
    }
    // Post/redirect/get: a reload of the result page does not post the decision again.
    return reply.redirect(`/ui/plans/${encodeURIComponent(id)}?done=1`, 303)
  }

  app.post('/plans/:id/approve', { preHandler: app.csrfProtection }, (req, reply) => decide(req, reply, 'approve'))
  app.post('/plans/:id/deny', { preHandler: app.csrfProtection }, (req, reply) => decide(req, reply, 'deny'))
}
