/**
 * `writ run ACTION --select EXPR | --nodes a,b,c` makes a plan and waits for
 * it; `writ plan <id>` reads one. Both print the results grouped — one line
 * a group: how many nodes, their status, which nodes, the output's first
 * line — escaped like everything the CLI prints.
 */
import { parseArgs } from 'node:util'
import type { Io } from './cli-io.js'
import { UsageError } from './cli-io.js'
import type { WritClient } from './cli-client.js'
import { terminalJson, terminalLine } from './terminal-text.js'

interface PlanAnswer {
  plan_id: string, status: string, status_reason: string, url: string, summary: string, counts: Record<string, number>
  groups: Array<{ count: number, status: string, exit_code: number | null, nodes: string[], more_nodes?: number, output: string }>
  excluded: Array<{ node: string, reason: string }>
  approval?: { url: string, expires_at: string, binding: string }
}

const EXIT_OF: Record<string, number> = { succeeded: 0, failed: 1, partially_failed: 1, halted: 1, pending_approval: 3 }
const FINISHED = new Set(['succeeded', 'failed', 'partially_failed', 'halted', 'denied', 'expired'])
const NODES_SHOWN = 8

function print(p: PlanAnswer, io: Io): void {
  io.err(`plan ${terminalLine(p.plan_id)}: ${terminalLine(p.status)} — ${terminalLine(p.status_reason)}\n`)
  for (const g of p.groups) {
    const more = (g.more_nodes ?? 0) + Math.max(0, g.nodes.length - NODES_SHOWN)
    const nodes = g.nodes.slice(0, NODES_SHOWN).map((n) => terminalLine(n)).join(', ') + (more > 0 ? `, … (+${more})` : '')
    io.out(`${String(g.count).padStart(5)} node(s)  ${terminalLine(g.status)}${g.status === 'succeeded' ? '' : ` (exit ${g.exit_code ?? 'none'})`}  ${nodes}\n`)
    const first = g.output.trim().split('\n')[0] ?? ''
    if (first !== '') io.out(`         ${terminalLine(first.length > 160 ? `${first.slice(0, 159)}…` : first)}\n`)
  }
  for (const e of p.excluded.slice(0, 20)) io.err(`  not in the plan: ${terminalLine(e.node)}: ${terminalLine(e.reason)}\n`)
  if (p.excluded.length > 20) io.err(`  … and ${p.excluded.length - 20} more not in the plan\n`)
}

async function settle(c: WritClient, id: string): Promise<PlanAnswer> {
  for (;;) {
    const p = (await c.request('GET', `/v1/plans/${encodeURIComponent(id)}?wait=50`)).json as PlanAnswer
    if (FINISHED.has(p.status) || p.status === 'pending_approval') return p
  }
}

/** The plan side of `writ run`: `--select` or `--nodes` instead of `--node`. */
export async function cmdRunPlan(c: WritClient, io: Io, req: { action: string, args: Record<string, unknown>, reason: string, session?: string | undefined, select?: string | undefined, nodes?: string | undefined, json: boolean }): Promise<number> {
  if ((req.select === undefined) === (req.nodes === undefined)) throw new UsageError('writ run takes one of --node, --select or --nodes')
  const targets = req.select !== undefined ? { selector: req.select } : { nodes: (req.nodes as string).split(',').map((n) => n.trim()).filter(Boolean) }
  const created = (await c.request('POST', '/v1/plans', { action: req.action, args: req.args, reason: req.reason, targets, ...(req.session ? { session_id: req.session } : {}) })).json as PlanAnswer
  io.err(`plan ${terminalLine(created.plan_id)}: ${terminalLine(created.status)}, ${created.counts.targets} target(s)\n`)
  const p = created.status === 'pending_approval' ? created : await settle(c, created.plan_id)
  if (p.status === 'pending_approval') {
    io.err(`plan ${terminalLine(p.plan_id)} waits for approval until ${terminalLine(p.approval?.expires_at ?? '?')}: ${terminalLine(p.approval?.url ?? p.url)}\n  check on it with: writ plan ${terminalLine(p.plan_id)} --wait 60\n`)
  } else print(p, io)
  if (req.json) io.out(`${terminalJson(p)}\n`)
  return EXIT_OF[p.status] ?? 2
}

export async function cmdPlan(argv: string[], io: Io, client: (values: { url?: string | undefined, token?: string | undefined }) => WritClient): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { wait: { type: 'string', default: '0' }, json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' } } })
  const id = positionals[0]
  if (!id || !/^\d{1,4}$/.test(values.wait ?? '0')) throw new UsageError('writ plan <plan-id> [--wait SECONDS]')
  const p = (await client(values).request('GET', `/v1/plans/${encodeURIComponent(id)}?wait=${Number(values.wait)}`)).json as PlanAnswer
  if (values.json) io.out(`${terminalJson(p)}\n`)
  else print(p, io)
  return EXIT_OF[p.status] ?? (FINISHED.has(p.status) ? 2 : 4)
}
