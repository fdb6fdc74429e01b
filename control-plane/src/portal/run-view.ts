/**
 * What the run page shows, worked out from the run record, the catalog, its
 * impact-preview runs and its evidence trail. Pure reads: building a page
 * never changes anything.
 */
import type { ActionFile, PackCatalog } from '@writ/packs'
import { ApprovalService } from '../approvals/index.js'
import type { Principal } from '../auth/index.js'
import { argumentLabels, isTerminal, presentRun, runSideEffects, runSummary, type Run, type RunStore } from '../runs/index.js'
import { evidenceTrail, pendingOnSameNode } from './evidence-view.js'
import { outputView } from './output-view.js'
import { previewView } from './preview-view.js'
import { statusWords } from './status-words.js'
import { timeLeft, URGENT_MS } from './time-text.js'

/** Whether `p` can decide `run` now, and if not, why (for the page to say). */
export function decisionFor(p: Principal, run: Run): { allowed: boolean, whyNot: string } | undefined {
  const a = run.approval
  if (!a || run.status !== 'pending_approval') return undefined
  if (Date.parse(a.expires_at) <= Date.now()) return { allowed: false, whyNot: 'The decision window has closed; the run expires.' }
  if (p.id === run.requester.id || p.person === (run.requester_person ?? run.requester.id)) return { allowed: false, whyNot: 'You requested this run; somebody else has to decide it.' }
  if (!ApprovalService.isApprover(p, a.approver_groups)) return { allowed: false, whyNot: `Approvers of this run come from ${a.approver_groups.join(', ')}; you are not in those groups.` }
  if (a.approvals.some((x) => x.by === p.id || x.person === p.person)) return { allowed: false, whyNot: `You approved it already; it needs ${a.quorum - a.approvals.length} more approval(s) from other people.` }
  return { allowed: true, whyNot: '' }
}

/**
 * The break-glass form, where the run's policy rule permits it and `p` could
 * run it alone now (an approver, not the requester; having approved already
 * is fine): the phrase the confirmation names, action and node.
 */
export function breakGlassFor(p: Principal, run: Run): { phrase: string } | undefined {
  const a = run.approval
  if (!a || run.status !== 'pending_approval' || run.policy.break_glass !== true || Date.parse(a.expires_at) <= Date.now()) return undefined
  if (p.id === run.requester.id || p.person === (run.requester_person ?? run.requester.id) || !ApprovalService.isApprover(p, a.approver_groups)) return undefined
  return { phrase: breakGlassPhrase(run) }
}

/** What the break-glass confirmation names: the action and the node. */
export function breakGlassPhrase(run: Pick<Run, 'action' | 'node_name'>): string {
  return `${run.action} on ${run.node_name}`
}

/** The call the action makes, as declared (templates, not values): for the folded details. */
function declaredCall(spec: ActionFile): string {
  switch (spec.kind) {
    case 'http': {
      const h = spec.execution.http
      const query = Object.entries(h.query ?? {}).map(([k, v]) => `${k}=${v}`).join('&')
      return `${h.target} API: ${h.method} ${h.path}${query ? `?${query}` : ''}`
    }
    case 'exec': return [spec.execution.command.binary, ...spec.execution.command.argv].join(' ')
    case 'script': return [spec.execution.script.interpreter, spec.execution.script.path, ...spec.execution.argv].join(' ')
    case 'list': return `list ${spec.execution.list.root}/${spec.execution.list.path}`
  }
}

/** What became of a run that is no longer waiting: who decided, when, and what it returned. */
function outcomeOf(run: Run, parser: string | undefined) {
  const r = run.result
  return {
    result: r ? {
      exit_code: r.exit_code === null ? 'none' : String(r.exit_code), duration: `${(r.duration_ms / 1000).toFixed(1)} s`, started_at: r.started_at, finished_at: r.finished_at,
      output: outputView(run, parser, 'page'), stderr: r.stderr, parse_error: r.parse_error ?? '',
    } : undefined,
    finished_at: run.finished_at,
  }
}

export async function runView(run: Run, viewer: Principal, store: RunStore, catalog: PackCatalog) {
  const shown = presentRun(run, catalog)
  const hit = catalog.lookup(run.action)
  const spec = hit.ok ? hit.action.spec : undefined
  const a = run.approval
  const preview = await previewView(run, store)
  const words = statusWords(run.status)
  const open = run.status === 'pending_approval' && a !== undefined && Date.parse(a.expires_at) > Date.now()
  // An id argument shows the name a person knows it by: the node's name, the allocation's job.group[n].
  const labels = argumentLabels(run, preview?.labels)
  return {
    summary: runSummary(run, catalog, preview?.labels),
    run: {
      ...shown, statusLabel: words.label, tone: words.tone, requester: `${run.requester.id} (${run.requester.kind})`,
      args: Object.entries(shown.args).map(([k, v]) => [k, `${Array.isArray(v) ? v.join(', ') : String(v)}${labels[k] ? ` (${labels[k]})` : ''}`]),
    },
    /** A run no longer waiting reads as history: what happened first. */
    history: run.status !== 'pending_approval',
    terminal: isTerminal(run.status),
    action: {
      id: run.action, title: spec?.title ?? run.action, description: spec?.description ?? '', risk: run.risk,
      side_effects: runSideEffects(run, catalog), call: spec ? declaredCall(spec) : '',
    },
    // The options narrow the declared limits and are part of what the binding covers, so the approver sees both.
    options: {
      given: Object.entries(run.options).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]),
      declared: spec ? `timeout ${spec.execution.timeout}, stdout up to ${spec.output.max_stdout_bytes} bytes` : '',
    },
    approval: a ? {
      ...a, groups: a.approver_groups.join(', '), open, timeLeft: timeLeft(a.expires_at), urgent: open && Date.parse(a.expires_at) - Date.now() < URGENT_MS,
    } : undefined,
    outcome: outcomeOf(shown, spec?.output.parser),
    preview,
    approvedState: run.state ? { index: run.state.modify_index, what: `${run.state.kind === 'allocation' ? 'allocation' : 'allocations on node'} ${run.state.id.slice(0, 8)}…` } : undefined,
    evidence: await evidenceTrail(run, store, catalog),
    nearby: run.status === 'pending_approval' ? await pendingOnSameNode(run, store, catalog) : [],
    decision: decisionFor(viewer, run),
    breakGlass: breakGlassFor(viewer, run),
  }
}
