/**
 * `writ pending`, `writ approve <run>`, `writ deny <run> --reason`: operators
 * deciding runs from a terminal, through the same approval service as the
 * portal (REST with an operator token: WRIT_TOKEN or WRIT_OPERATOR_TOKEN).
 *
 * What a person reads is what runs: `pending` shows each run's arguments
 * (sensitive ones redacted by the server), options and binding prefix, every
 * field escaped for the terminal; `approve` and `deny` print the run they
 * decide and send the binding they printed, or the one the operator pins with
 * `--binding` (a prefix from `pending` will do), so a run that is not what was
 * read is refused. On a terminal, `approve` asks y/N after printing the run
 * (`--yes` skips it); it never asks when stdin is not a terminal, so no prompt
 * stands between a script and its decision.
 */
import { parseArgs } from 'node:util'
import { WritClient } from './cli-client.js'
import { EXIT, UsageError, type Io } from './cli-io.js'
import { pairs } from './show-command.js'
import { terminalJson, terminalLine } from './terminal-text.js'

/** What `writ pending` and `writ approve` show of a run (the API's presented run). */
export interface ShownRun {
  id: string, summary?: string, action: string, node_name: string, risk: string, status: string, status_reason: string,
  reason: string, expected?: string, requester: { id: string },
  args?: Record<string, unknown>, options?: Record<string, unknown>,
  approval?: { url?: string, expires_at: string, quorum: number, approvals_so_far?: number, approvals?: unknown[], binding: string }
}

/** How many hex characters of a binding are shown (as on the run page) and the fewest `--binding` accepts. */
const SHOWN_BINDING = 16
const MIN_BINDING_PREFIX = 8

export function operatorClient(env: NodeJS.ProcessEnv, flags: { url?: string | undefined, token?: string | undefined }): WritClient {
  // An empty variable counts as unset.
  const token = flags.token || env.WRIT_TOKEN || env.WRIT_OPERATOR_TOKEN
  if (!token) throw new UsageError('deciding runs needs an operator token: set WRIT_TOKEN (or WRIT_OPERATOR_TOKEN) or pass --token')
  return new WritClient(flags.url ?? env.WRIT_URL ?? 'http://127.0.0.1:8480', token)
}

const common = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } } as const

/** The lines that say what deciding `r` decides: every field escaped, one field a line. */
export function describeRun(r: ShownRun): string {
  const lines = [
    `    action:   ${headline(r)}`,
    `    reason:   ${terminalLine(r.reason)}`,
    ...(r.expected !== undefined ? [`    expected: ${terminalLine(r.expected)}`] : []),
    `    args:     ${pairs(r.args)}`,
    `    options:  ${pairs(r.options)}`,
    ...(r.approval ? [`    binding:  ${terminalLine(r.approval.binding.slice(0, SHOWN_BINDING))}…`] : []),
  ]
  return `${lines.join('\n')}\n`
}

function headline(r: ShownRun): string {
  const where = `${terminalLine(r.action)} on ${terminalLine(r.node_name)} (${terminalLine(r.risk)} risk)`
  return `${where}, requested by ${terminalLine(r.requester.id)}`
}

export async function cmdPending(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, node: { type: 'string' }, mine: { type: 'boolean', default: false } } })
  const q = new URLSearchParams()
  if (values.node) q.set('node', values.node)
  if (values.mine) q.set('mine', 'true')
  const runs = await allPending(operatorClient(io.env, values), q)
  if (values.json) { io.out(`${terminalJson(runs, 2)}\n`); return 0 }
  if (runs.length === 0) { io.err('no run is waiting for approval\n'); return 0 }
  for (const r of runs) {
    const a = r.approval
    const left = a ? Math.max(0, Math.round((Date.parse(a.expires_at) - Date.now()) / 60_000)) : 0
    // The line is the run's summary: two runs of one action differ in what they change.
    io.out(`${terminalLine(r.id)}  ${terminalLine(r.summary ?? r.action)}  ${a?.approvals_so_far ?? 0}/${a?.quorum ?? '?'} approvals, ${left} min left\n`)
    io.out(describeRun(r))
    if (a?.url) io.out(`    ${terminalLine(a.url)}\n`)
  }
  return 0
}

/** Every waiting run: the list comes a page at a time, and the cursor is followed so none is left out. */
async function allPending(client: WritClient, q: URLSearchParams): Promise<ShownRun[]> {
  const runs: ShownRun[] = []
  q.set('limit', '1000')
  for (;;) {
    const { json } = await client.request('GET', `/v1/approvals?${q}`)
    const page = json as { approvals: ShownRun[], next_cursor?: string | null }
    runs.push(...page.approvals)
    // A cursor that does not move on would loop for ever: stop there.
    if (!page.next_cursor || page.next_cursor === q.get('cursor') || page.approvals.length === 0) return runs
    q.set('cursor', page.next_cursor)
  }
}

/**
 * The binding to send: the run's, checked against what the operator pinned.
 * A full digest is sent as given (the control plane compares it); a prefix
 * must start the run's binding, or nothing is sent.
 */
export function bindingToSend(run: ShownRun, pinned: string | undefined): string | undefined {
  const binding = run.approval?.binding
  if (pinned === undefined) return binding
  const p = pinned.toLowerCase()
  if (!new RegExp(`^[0-9a-f]{${MIN_BINDING_PREFIX},64}$`).test(p)) {
    const what = `at least ${MIN_BINDING_PREFIX} hex characters, as writ pending shows it`
    throw new UsageError(`--binding takes the run's binding digest or a prefix of it (${what})`)
  }
  if (p.length === 64 || binding === undefined) return p
  if (!binding.startsWith(p)) throw new BindingNotRead(run.id, p, binding)
  return binding
}

/** `--binding` names another binding than the run's: the run is not the one the operator read. */
export class BindingNotRead extends Error {
  constructor(runId: string, pinned: string, actual: string) {
    // Worded and coded as the control plane's own refusal of a decision on another binding.
    const bound = `run "${terminalLine(runId)}" is bound to ${actual.slice(0, SHOWN_BINDING)}…, not to the ${pinned.slice(0, SHOWN_BINDING)}… you pinned`
    super(`WRIT_ERR_BINDING_MISMATCH: ${bound}: it is not the run you read; nothing was decided`)
    this.name = 'BindingNotRead'
  }
}

export async function cmdDecide(verb: 'approve' | 'deny', argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { ...common, comment: { type: 'string' }, reason: { type: 'string' }, binding: { type: 'string' }, yes: { type: 'boolean', default: false } },
  })
  const id = positionals[0]
  if (!id) throw new UsageError(`writ ${verb} <run-id>${verb === 'deny' ? ' --reason "why"' : ' [--comment "…"]'} [--binding PREFIX]`)
  if (verb === 'deny' && !values.reason) throw new UsageError('writ deny needs --reason "why" (the agent is told)')
  const client = operatorClient(io.env, values)
  const run = (await client.request('GET', `/v1/runs/${encodeURIComponent(id)}`)).json as ShownRun
  const binding = bindingToSend(run, values.binding)
  io.err(`${verb === 'approve' ? 'approving' : 'denying'} run ${terminalLine(run.id)}: ${terminalLine(run.summary ?? run.action)}\n${describeRun(run)}`)
  if (verb === 'approve' && io.interactive && io.ask && !values.yes) {
    const answer = (await io.ask('Approve this run? [y/N] ')).trim().toLowerCase()
    if (answer !== 'y' && answer !== 'yes') { io.err('not approved: nothing was decided\n'); return EXIT.notConfirmed }
  }
  const body = {
    ...(binding !== undefined ? { binding } : {}),
    ...(verb === 'deny' ? { reason: values.reason } : values.comment ? { comment: values.comment } : {}),
  }
  const { json } = await client.request('POST', `/v1/runs/${encodeURIComponent(id)}/${verb}`, body)
  const decided = json as { id: string, status: string, status_reason: string }
  if (values.json) io.out(`${terminalJson(decided)}\n`)
  else io.out(`run ${terminalLine(decided.id)}: ${terminalLine(decided.status)} — ${terminalLine(decided.status_reason)}\n`)
  return EXIT.ok
}
