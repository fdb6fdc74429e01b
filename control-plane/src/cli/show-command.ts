/**
 * `writ show <run>`: one run as a person reviews it — the summary, what was
 * asked and why, the arguments, what the requester expects, the evidence it
 * cites, the approvals, the result and its output. Every field is escaped for
 * the terminal (it came from an agent, a node or a command).
 */
import { parseArgs } from 'node:util'
import { ApiError, WritClient } from './cli-client.js'
import { EXIT, UsageError, type Io } from './cli-io.js'
import { terminalBlock, terminalJson, terminalLine } from './terminal-text.js'

interface Decision { by: string, at: string, comment?: string, reason?: string, passkey?: unknown, break_glass?: boolean }
/** What `writ show` reads of a run (`GET /v1/runs/:id`). */
interface ShownRun {
  id: string, summary?: string, action: string, node_name: string, risk: string, status: string, status_reason: string,
  reason: string, expected?: string, evidence?: string[], requester: { id: string, kind: string }, created_at: string, session_id?: string,
  args?: Record<string, unknown>, options?: Record<string, unknown>,
  approval?: { expires_at: string, quorum: number, approver_groups: string[], approvals: Decision[], denial?: Decision, binding: string },
  /** The Nomad state the approval is bound to (the runner refuses `state_changed` if it moved). */
  state?: { kind: string, id: string, modify_index: number },
  result?: { exit_code: number | null, duration_ms: number, stdout: string, stderr: string, stdout_truncated: boolean },
}

/** `k=v` pairs on one line, each part escaped; values as JSON where they are not plain strings. */
export function pairs(values: Record<string, unknown> | undefined): string {
  const entries = Object.entries(values ?? {}).filter(([, v]) => v !== undefined)
  if (entries.length === 0) return 'none'
  return entries.map(([k, v]) => `${terminalLine(k)}=${terminalLine(typeof v === 'string' ? v : JSON.stringify(v))}`).join('  ')
}

/** Shows runs to whoever holds the token: an operator sees every run, an agent its own. */
function reader(env: NodeJS.ProcessEnv, flags: { url?: string | undefined, token?: string | undefined }): WritClient {
  // An empty variable counts as unset.
  const token = flags.token || env.WRIT_TOKEN || env.WRIT_OPERATOR_TOKEN || env.WRIT_AGENT_TOKEN
  if (!token) throw new UsageError('set WRIT_TOKEN (or WRIT_OPERATOR_TOKEN, WRIT_AGENT_TOKEN) or pass --token')
  return new WritClient(flags.url ?? env.WRIT_URL ?? 'http://127.0.0.1:8480', token)
}

async function evidenceLines(client: WritClient, ids: readonly string[]): Promise<string[]> {
  const lines: string[] = []
  for (const id of ids) {
    try {
      const r = (await client.request('GET', `/v1/runs/${encodeURIComponent(id)}`)).json as ShownRun
      lines.push(`${terminalLine(r.id)}  ${terminalLine(r.summary ?? r.action)} — ${terminalLine(r.status)}`)
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      lines.push(`${terminalLine(id)}  (${terminalLine(err.code)})`)
    }
  }
  return lines
}

function decisionLines(r: ShownRun): string[] {
  const a = r.approval
  if (!a) return ['no approval needed']
  const left = Math.max(0, Math.round((Date.parse(a.expires_at) - Date.now()) / 60_000))
  const window = r.status === 'pending_approval' ? `, until ${terminalLine(a.expires_at)} (${left} min left)` : ''
  return [
    `${a.approvals.length} of ${a.quorum} approvals from ${terminalLine(a.approver_groups.join(', '))}${window}; binding ${terminalLine(a.binding.slice(0, 16))}…`,
    ...(r.state ? [`approved state: index ${r.state.modify_index} (${terminalLine(r.state.kind)} ${terminalLine(r.state.id)}); the runner refuses if it has changed when it acts`] : []),
    ...a.approvals.map((d) => `✓ ${terminalLine(d.by)}${d.passkey ? ' (passkey)' : ''}${d.break_glass ? ' (BREAK-GLASS, alone)' : ''} at ${terminalLine(d.at)}${d.comment ? `: “${terminalLine(d.comment)}”` : ''}`),
    ...(a.denial ? [`✗ denied by ${terminalLine(a.denial.by)} at ${terminalLine(a.denial.at)}: “${terminalLine(a.denial.reason ?? '')}”`] : []),
  ]
}

export async function cmdShow(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' } } })
  const id = positionals[0]
  if (!id || positionals.length > 1) throw new UsageError('writ show <run-id> [--json]')
  const client = reader(io.env, values)
  const r = (await client.request('GET', `/v1/runs/${encodeURIComponent(id)}`)).json as ShownRun
  if (values.json) { io.out(`${terminalJson(r, 2)}\n`); return EXIT.ok }
  const field = (name: string, lines: readonly string[]): string => lines.map((l, i) => `  ${(i === 0 ? `${name}:` : '').padEnd(11)}${l}\n`).join('')
  const res = r.result
  io.out([
    `run ${terminalLine(r.id)}: ${terminalLine(r.summary ?? r.action)}\n`,
    field('status', [`${terminalLine(r.status)} — ${terminalLine(r.status_reason)}`]),
    field('action', [`${terminalLine(r.action)} on ${terminalLine(r.node_name)} (${terminalLine(r.risk)} risk), requested by ${terminalLine(r.requester.id)} at ${terminalLine(r.created_at)}`]),
    field('reason', [terminalLine(r.reason)]),
    field('expected', [terminalLine(r.expected ?? 'not stated')]),
    field('args', [pairs(r.args)]),
    field('options', [pairs(r.options)]),
    field('evidence', r.evidence?.length ? await evidenceLines(client, r.evidence) : ['none cited']),
    field('approvals', decisionLines(r)),
    field('result', [res ? `${res.exit_code === null ? 'no exit code' : `exit ${res.exit_code}`} after ${(res.duration_ms / 1000).toFixed(1)} s${res.stdout_truncated ? '; output capped at the action\'s limit' : ''}` : 'none yet']),
  ].join(''))
  if (res?.stdout) io.out(`  output:\n${terminalBlock(res.stdout)}${res.stdout.endsWith('\n') ? '' : '\n'}`)
  if (res?.stderr) io.out(`  stderr:\n${terminalBlock(res.stderr)}${res.stderr.endsWith('\n') ? '' : '\n'}`)
  return EXIT.ok
}
