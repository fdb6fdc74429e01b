/**
 * `writ pending`, `writ approve <run>`, `writ deny <run> --reason`: operators
 * deciding runs from a terminal, through the same approval service as the
 * portal (REST with an operator token: WRIT_TOKEN or WRIT_OPERATOR_TOKEN).
 */
import { parseArgs } from 'node:util'
import { WritClient } from './cli-client.js'
import { UsageError, type Io } from './cli-io.js'

interface PendingRun {
  id: string, action: string, node_name: string, risk: string, reason: string, requester: { id: string }, created_at: string,
  approval: { url: string, expires_at: string, quorum: number, approvals_so_far: number }
}

export function operatorClient(env: NodeJS.ProcessEnv, flags: { url?: string | undefined, token?: string | undefined }): WritClient {
  // An empty variable counts as unset.
  const token = flags.token || env.WRIT_TOKEN || env.WRIT_OPERATOR_TOKEN
  if (!token) throw new UsageError('deciding runs needs an operator token: set WRIT_TOKEN (or WRIT_OPERATOR_TOKEN) or pass --token')
  return new WritClient(flags.url ?? env.WRIT_URL ?? 'http://127.0.0.1:8480', token)
}

const common = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } } as const

export async function cmdPending(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, node: { type: 'string' }, mine: { type: 'boolean', default: false } } })
  const q = new URLSearchParams()
  if (values.node) q.set('node', values.node)
  if (values.mine) q.set('mine', 'true')
  const runs = await allPending(operatorClient(io.env, values), q)
  if (values.json) { io.out(`${JSON.stringify(runs, null, 2)}\n`); return 0 }
  if (runs.length === 0) { io.err('no run is waiting for approval\n'); return 0 }
  for (const r of runs) {
    const left = Math.max(0, Math.round((Date.parse(r.approval.expires_at) - Date.now()) / 60_000))
    io.out(`${r.id}  ${r.action} on ${r.node_name} (${r.risk})  by ${r.requester.id}  ${r.approval.approvals_so_far}/${r.approval.quorum} approvals, ${left} min left\n    reason: ${r.reason}\n    ${r.approval.url}\n`)
  }
  return 0
}

/** Every waiting run: the list comes a page at a time, and the cursor is followed so none is left out. */
async function allPending(client: WritClient, q: URLSearchParams): Promise<PendingRun[]> {
  const runs: PendingRun[] = []
  q.set('limit', '1000')
  for (;;) {
    const { json } = await client.request('GET', `/v1/approvals?${q}`)
    const page = json as { approvals: PendingRun[], next_cursor?: string | null }
    runs.push(...page.approvals)
    // A cursor that does not move on would loop for ever: stop there.
    if (!page.next_cursor || page.next_cursor === q.get('cursor') || page.approvals.length === 0) return runs
    q.set('cursor', page.next_cursor)
  }
}

export async function cmdDecide(verb: 'approve' | 'deny', argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, comment: { type: 'string' }, reason: { type: 'string' } } })
  const id = positionals[0]
  if (!id) throw new UsageError(`writ ${verb} <run-id>${verb === 'deny' ? ' --reason "why"' : ' [--comment "…"]'}`)
  if (verb === 'deny' && !values.reason) throw new UsageError('writ deny needs --reason "why" (the agent is told)')
  const body = verb === 'deny' ? { reason: values.reason } : values.comment ? { comment: values.comment } : {}
  const { json } = await operatorClient(io.env, values).request('POST', `/v1/runs/${encodeURIComponent(id)}/${verb}`, body)
  const run = json as { id: string, status: string, status_reason: string }
  if (values.json) io.out(`${JSON.stringify(run)}\n`)
  else io.out(`run ${run.id}: ${run.status} — ${run.status_reason}\n`)
  return 0
}
