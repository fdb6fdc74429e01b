/** The inbox of pending runs, the run list, the audit timeline and the nodes page (with each runner's approver registry): reads only. */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { ApprovalService } from '../approvals/index.js'
import { AuditEventSchema, type AuditEvent } from '../audit/index.js'
import { RunStatusSchema, runSummary } from '../runs/index.js'
import { parseOrThrow } from '../http/index.js'
import type { RegistryMark } from '@writ/packs/approvers'
import { registryStanding, type FleetNode } from '../fleet/index.js'
import type { PageRenderer } from './page-render.js'
import { statusWords } from './status-words.js'
import { timeLeft, URGENT_MS } from './time-text.js'

const InboxQuery = z.object({ cursor: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected the cursor of an "Older requests" link').optional() }).strict()
const RunsQuery = z.object({
  status: z.union([RunStatusSchema, z.literal('')]).optional(), node: z.string().max(256).optional(), action: z.string().max(200).optional(),
  /** `1` lists the control plane's own runs (impact previews) too. */
  system: z.enum(['', '1']).optional(),
  before: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected the run id of an "Older runs" link').optional(),
}).strict()
const AuditQuery = z.object({
  run_id: z.string().max(64).optional(), type: z.string().max(64).optional(), actor: z.string().max(128).optional(),
  before: z.coerce.number().int().min(1).optional(),
}).strict()
const PAGE = 200
/** Runs one page of the run list shows; older ones are a link away. */
const RUNS_PAGE = 50
/** Waiting runs one inbox page shows; older ones are a link away, never cut off. */
const INBOX_PAGE = 100
/** How far back one audit page scans for matches. */
const SCAN = 5000

function summaryOf(e: AuditEvent): string {
  const d = e.data as Record<string, unknown>
  const s = (v: unknown): string => (typeof v === 'string' ? v : '')
  switch (e.type) {
    case 'run.requested': return `${e.action ?? ''} on ${e.node ?? ''}: ${s(d.reason)}${d.expected ? ` — expects: ${s(d.expected)}` : ''}${Array.isArray(d.evidence) ? ` — evidence: ${d.evidence.join(', ')}` : ''}`
    case 'approval.granted': return `approved${d.comment ? `: “${s(d.comment)}”` : ''} (${String(d.approvals_so_far)} of ${String(d.quorum)})`
    case 'approval.denied': return `denied: ${s(d.reason)}`
    case 'request.rejected': return `${s(d.code)}: ${s(d.message)}`
    case 'run.finished': return `${s(d.status)}${typeof d.exit_code === 'number' ? `, exit ${d.exit_code}` : ''}`
    default: return ''
  }
}

/** The Nodes page's approver-registry cell: which one the runner holds, and a flag when it is not the control plane's. */
function registryCell(held: FleetNode['approver_registry'], current: RegistryMark | undefined): { text: string, flag?: string } {
  const text = held ? `serial ${held.serial} · ${held.digest.slice(0, 12)}…` : 'none'
  switch (registryStanding(held, current)) {
    case 'behind': return { text, flag: `behind: the control plane's is serial ${current?.serial}; this runner still accepts passkeys revoked since` }
    case 'differs': return { text, flag: `differs from the control plane's serial ${current?.serial} (${current?.digest.slice(0, 12)}…)` }
    case 'missing': return { text, flag: 'no approver registry: this runner checks no passkey' }
    case 'ahead': return { text, flag: `newer than the control plane's serial ${current?.serial}` }
    default: return { text }
  }
}

export default async function listPageRoutes(app: FastifyInstance, opts: { pages: PageRenderer }) {
  const { store, approvals, fleet, audit, catalog, passkeys } = app.writ
  const { pages } = opts

  app.get('/', async (req, reply) => {
    const me = req.principal!
    const q = parseOrThrow(InboxQuery, req.query, 'query')
    const page = approvals.page({}, INBOX_PAGE, q.cursor)
    const runs = await Promise.all(page.runs.map(async (r) => {
      const full = (await store.current(r.id))?.run
      const expires = r.approval?.expires_at ?? r.created_at
      return {
        id: r.id, action: r.action, node: r.node_name, risk: r.risk, reason: r.reason, requester: r.requester.id, created_at: r.created_at,
        // Two runs of one action differ in their arguments: the card's title is the run's summary, not the action's title.
        title: full ? runSummary(full, catalog) : r.action, approvals: r.approval?.approvals.length ?? 0, quorum: r.approval?.quorum ?? 1,
        expires_at: expires, timeLeft: timeLeft(expires), urgent: Date.parse(expires) - Date.now() < URGENT_MS,
        mine: ApprovalService.isApprover(me, r.approval?.approver_groups ?? []) && r.requester.id !== me.id && (r.requester_person ?? r.requester.id) !== me.person,
      }
    }))
    const older = page.next_cursor ? `/ui?cursor=${encodeURIComponent(page.next_cursor)}` : undefined
    // Plans waiting for one decision over all their targets, above the single runs.
    const plans = (await app.writ.plans.service.list(me, { status: 'pending_approval' }, 50)).map(({ plan }) => ({
      id: plan.id, action: plan.action, count: plan.targets.length, risk: plan.risk, reason: plan.reason, requester: plan.requester.id,
      timeLeft: timeLeft(plan.approval?.expires_at ?? plan.created_at),
    }))
    return pages.page(req, reply, '@inbox', { title: 'Inbox', nav: 'inbox', liveInbox: true }, { runs, plans, total: page.total, older, paged: q.cursor !== undefined })
  })

  app.get('/runs', async (req, reply) => {
    // A filter that makes no sense is said so (WRIT_ERR_VALIDATION page), not silently dropped.
    const filter = parseOrThrow(RunsQuery, req.query, 'query')
    const matches = store.list({ status: filter.status || undefined, node: filter.node || undefined, action: filter.action || undefined }, Number.MAX_SAFE_INTEGER)
      .filter((r) => (filter.system === '1' || r.requester.kind !== 'system') && (filter.before === undefined || r.id < filter.before))
    const page = matches.slice(0, RUNS_PAGE)
    const runs = await Promise.all(page.map(async (r) => {
      const full = (await store.current(r.id))?.run
      const words = statusWords(r.status)
      return { id: r.id, summary: full ? runSummary(full, catalog) : r.action, action: r.action, node: r.node_name, status: words.label, tone: words.tone, requester: r.requester.id, created_at: r.created_at }
    }))
    const params = (over: Record<string, string | undefined>) => new URLSearchParams(Object.entries({ ...filter, before: undefined, ...over }).filter(([, v]) => v) as Array<[string, string]>).toString()
    const older = matches.length > RUNS_PAGE ? `/ui/runs?${params({ before: page.at(-1)?.id })}` : undefined
    const toggle = `/ui/runs?${params({ system: filter.system === '1' ? undefined : '1' })}`
    return pages.page(req, reply, '@runs', { title: 'Runs', nav: 'runs' }, { runs, filter, statuses: RunStatusSchema.options, older, newest: filter.before ? `/ui/runs?${params({})}` : undefined, toggle })
  })

  app.get('/audit', async (req, reply) => {
    const q = parseOrThrow(AuditQuery, req.query, 'query')
    const last = await audit.lastSeq()
    const end = Math.min(last, (q.before ?? last + 1) - 1)
    const from = Math.max(1, end - SCAN + 1)
    const matched: AuditEvent[] = []
    if (end >= 1) {
      for await (const stored of audit.read(from)) {
        if (stored.streamSeq > end) break
        let json: unknown
        try { json = JSON.parse(stored.text) } catch { json = undefined }
        const ev = AuditEventSchema.safeParse(json)
        if (!ev.success) continue
        const e = ev.data
        if (q.run_id && e.run_id !== q.run_id) continue
        if (q.type && e.type !== q.type) continue
        if (q.actor && e.actor?.id !== q.actor) continue
        matched.push(e)
      }
    }
    const shown = matched.slice(-PAGE).reverse()
    // A runner speaks as node:<id>; a person knows the node by its name.
    const actorText = (a: AuditEvent['actor']): string => {
      if (!a) return 'nobody'
      const node = a.id.startsWith('node:') ? fleet.find(a.id.slice('node:'.length)) : undefined
      return node ? `the runner on ${node.name} (${a.kind})` : `${a.id} (${a.kind})`
    }
    const events = shown.map((e) => ({
      seq: e.seq, at: e.at, type: e.type, actor: actorText(e.actor), run_id: e.run_id,
      summary: summaryOf(e), prev: `${e.prev.slice(0, 12)}…`, hash: `${e.hash.slice(0, 12)}…`,
    }))
    const params = new URLSearchParams(Object.entries({ run_id: q.run_id, type: q.type, actor: q.actor }).filter(([, v]) => v) as Array<[string, string]>)
    if (from > 1) params.set('before', String(from))
    const older = from > 1 ? `/ui/audit?${params}` : undefined
    return pages.page(req, reply, '@audit', { title: 'Audit trail', nav: 'audit' }, { events, filter: q, older })
  })

  app.get('/nodes', async (req, reply) => {
    const digests = new Map(catalog.packs.map((p) => [p.id, p.digest]))
    const current = passkeys?.mark
    const nodes = fleet.list().map((n) => ({
      ...n, pool: n.nomad.source === 'nomad' ? [n.nomad.node_pool, n.nomad.datacenter].filter(Boolean).join(' / ') || '—' : 'unknown (Nomad)',
      packs: n.packs.map((p) => `${p.id}${digests.get(p.id) === p.digest ? '' : ' (digest differs)'}`).join(', '),
      registry: registryCell(n.approver_registry, current),
    }))
    const registryColumn = current !== undefined || nodes.some((n) => n.approver_registry)
    // The freeze form: what is frozen, and the scopes it can take (every agent, or one agent principal).
    const { brakes, principals } = app.writ
    const done = (req.query as { brakes?: unknown }).brakes
    const brakeFlash = done === 'frozen' ? 'Frozen. Every replica refuses change-making requests from that scope now.' : done === 'unfrozen' ? 'Unfrozen. Held runs are being dispatched.' : undefined
    const freezeScopes = principals.ids().filter((id) => principals.get(id)?.kind === 'agent')
    return pages.page(req, reply, '@nodes', { title: 'Nodes', nav: 'nodes' }, { nodes, registryColumn, current, freezeList: brakes.freezes, freezeScopes, brakeFlash })
  })
}
