/**
 * A run as an MCP answer shows it to a model: its typed status, why it is in
 * it, what to do next, the approval state a person is deciding, and the output
 * sized by `output-fit.ts` (parsed when the action has a parser).
 */
import type { OutputChunk } from '@writ/packs/protocol'
import { isTerminal, type Run, type RunOutcome } from '../runs/index.js'
import { fitJson, fitText } from './output-fit.js'

export interface OutputView {
  stdout?: string
  stderr?: string
  parsed?: unknown
  parse_error?: string
  /** Characters of stdout the run recorded (or, while running, has streamed so far). */
  stdout_chars: number
  /** Each part that was left out, in words. */
  cut?: string[]
  /** Pass as `cursor` to wait_for_run to read stdout on from here. */
  next_cursor?: number
}

export interface RunView {
  status: Run['status']
  run_id: string
  action: string
  node: string
  reason: string
  session_id?: string
  status_reason: string
  next?: string
  created_at: string
  finished_at?: string
  exit_code?: number | null
  duration_ms?: number
  approval?: {
    url: string, quorum: number, approvals_so_far: number, approver_groups: string[], expires_at: string
    approved_by?: Array<{ by: string, at: string }>
    denial?: { by: string, at: string, reason: string }
  }
  /** The standing grant that let it run without waiting for a person. */
  grant?: { id: string, uses_left: number | null, expires_at: string }
  node_last_seen?: string
  output?: OutputView
}

export interface ViewContext {
  /** Character budget for output in one answer. */
  budget: number
  /** When the run's node last sent a heartbeat (for node_offline). */
  lastSeen?: string | undefined
  /** The run's portal page. */
  url: string
  /** Where to read stdout from; undefined for the first look (head and tail). */
  cursor?: number | undefined
  /** Live chunks of a run still going. */
  live?: { chunks: OutputChunk[], dropped: boolean } | undefined
}

/** What a model should do after seeing a run in this status. */
export function nextStep(run: Run, lastSeen?: string): string | undefined {
  switch (run.status) {
    case 'pending_approval':
      return `People in ${run.approval?.approver_groups.join(', ') ?? 'the approver groups'} decide this in the writ portal (approval.url) until ${run.approval?.expires_at ?? 'the window closes'}. You cannot approve it and must not try. Tell the user the link if useful, then call wait_for_run with this run_id.`
    case 'approved': case 'dispatched': case 'running':
      return 'Call wait_for_run with this run_id (and next_cursor) for the output and the outcome.'
    case 'succeeded': return undefined
    case 'failed': return 'The action ran and failed: read stderr and the exit code before deciding what to do.'
    case 'denied':
      return run.approval?.denial
        ? `${run.approval.denial.by} denied it: "${run.approval.denial.reason}". Do not submit the same request again; address that reason first or ask the user.`
        : 'Policy does not allow this run for you. Do not retry with other wording; ask a person whether it should be done another way.'
    case 'expired': return 'Nobody decided before the approval window closed; nothing ran. Request it again only if it is still needed, with a fresh reason.'
    case 'node_offline': return `The node${lastSeen ? ` was last seen at ${lastSeen}` : ' is not reachable'}; nothing ran. Check list_nodes, then try again later or on another node.`
    case 'refused_by_runner': return 'The node refused the writ and ran nothing (see status_reason); tell a person, this is not fixed by retrying.'
    case 'timed_out': return 'The action did not finish within its timeout and was stopped; its partial output is shown.'
    case 'canceled': return 'The run was canceled; see status_reason for by whom.'
    case 'lost': return 'No result arrived in time: the action may or may not have run. Check its effect with a read action before any retry; never repeat a change blindly.'
  }
}

/** The run as one MCP answer shows it. */
export function runView(run: Run, ctx: ViewContext): RunView {
  const view: RunView = {
    status: run.status, run_id: run.id, action: run.action, node: run.node_name, reason: run.reason,
    ...(run.session_id ? { session_id: run.session_id } : {}),
    status_reason: run.status_reason,
    created_at: run.created_at,
    ...(run.finished_at ? { finished_at: run.finished_at } : {}),
  }
  const next = nextStep(run, ctx.lastSeen)
  if (next) view.next = next
  const a = run.approval
  if (a) {
    view.approval = {
      url: ctx.url, quorum: a.quorum, approvals_so_far: a.approvals.length, approver_groups: a.approver_groups, expires_at: a.expires_at,
      ...(a.approvals.length > 0 ? { approved_by: a.approvals.map((x) => ({ by: x.by, at: x.at })) } : {}),
      ...(a.denial ? { denial: { by: a.denial.by, at: a.denial.at, reason: a.denial.reason } } : {}),
    }
  }
  if (run.grant) view.grant = run.grant
  if (run.status === 'node_offline' && ctx.lastSeen) view.node_last_seen = ctx.lastSeen
  if (run.result) {
    view.exit_code = run.result.exit_code
    view.duration_ms = run.result.duration_ms
    view.output = finishedOutput(run.result, ctx.budget, ctx.cursor)
  } else if (!isTerminal(run.status) && ctx.live && ctx.live.chunks.length > 0) {
    view.output = liveOutput(ctx.live, ctx.budget, ctx.cursor ?? 0)
  }
  return view
}

function finishedOutput(r: RunOutcome, budget: number, cursor: number | undefined): OutputView {
  const cut: string[] = []
  const out: OutputView = { stdout_chars: r.stdout.length }
  if (r.stdout_truncated) cut.push(`the node kept only the first ${r.stdout.length} characters of stdout (the action's output cap); it printed ${r.stdout_bytes} bytes`)
  const errBudget = Math.floor(budget / 4)
  if (r.stderr !== '') {
    const e = fitText(r.stderr, errBudget)
    out.stderr = e.text
    if (e.cut) cut.push(`stderr: ${e.cut.omitted} of ${r.stderr.length} characters cut from the middle`)
  }
  const room = budget - (out.stderr?.length ?? 0)
  if (cursor !== undefined) {
    // Paging on: the raw text from the cursor, as much as fits.
    const page = r.stdout.slice(cursor, cursor + room)
    out.stdout = page
    const end = cursor + page.length
    if (end < r.stdout.length) { out.next_cursor = end; cut.push(`stdout: showing characters ${cursor}–${end} of ${r.stdout.length}; call wait_for_run with cursor ${end} to read on`) }
  } else if (r.parsed !== undefined) {
    const p = fitJson(r.parsed, room)
    out.parsed = p.value
    for (const c of p.cuts) cut.push(`parsed ${c}`)
    if (r.stdout.length > 0) cut.push('stdout is not repeated: parsed holds it; wait_for_run with cursor 0 returns the raw text')
  } else {
    const s = fitText(r.stdout, room)
    out.stdout = s.text
    if (s.cut) {
      out.next_cursor = s.cut.headEnd
      cut.push(`stdout: characters ${s.cut.headEnd}–${s.cut.tailStart} of ${r.stdout.length} cut; call wait_for_run with cursor ${s.cut.headEnd} to read them`)
    }
  }
  if (r.parse_error !== undefined) out.parse_error = r.parse_error
  if (cut.length > 0) out.cut = cut
  return out
}

function liveOutput(live: NonNullable<ViewContext['live']>, budget: number, cursor: number): OutputView {
  const stdout = live.chunks.filter((c) => c.stream === 'stdout').map((c) => c.data).join('')
  const stderr = live.chunks.filter((c) => c.stream === 'stderr').map((c) => c.data).join('')
  const out: OutputView = { stdout_chars: stdout.length }
  const cut: string[] = []
  if (stderr !== '') {
    const e = fitText(stderr, Math.floor(budget / 4))
    out.stderr = e.text
    if (e.cut) cut.push(`stderr so far: ${e.cut.omitted} characters cut from the middle`)
  }
  const page = stdout.slice(cursor, cursor + budget - (out.stderr?.length ?? 0))
  out.stdout = page
  out.next_cursor = cursor + page.length
  if (live.dropped) cut.push('live output beyond 256 KiB is not buffered; the full output comes with the result')
  if (cut.length > 0) out.cut = cut
  return out
}
