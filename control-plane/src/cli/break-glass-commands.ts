/**
 * `writ break-glass <run> --reason "…"`, `writ reviews`, `writ ack <review>`:
 * running a gated run alone where its policy rule permits it, and the review
 * items other approvers acknowledge (REST with an operator token). Like
 * `writ approve`, break-glass prints the run it runs, sends the binding it
 * printed (or the one pinned), and on a terminal asks first — naming the
 * action and the node.
 */
import { parseArgs } from 'node:util'
import { EXIT, UsageError, type Io } from './cli-io.js'
import { bindingToSend, describeRun, operatorClient, type ShownRun } from './approval-commands.js'
import { terminalJson, terminalLine } from './terminal-text.js'

const common = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } } as const

interface Review { id: string, run_id: string, action: string, node: string, by: string, reason: string, at: string, acknowledged_by?: string, acknowledged_at?: string, comment?: string }

export async function cmdBreakGlass(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, reason: { type: 'string' }, binding: { type: 'string' }, yes: { type: 'boolean', default: false } } })
  const id = positionals[0]
  if (!id || !values.reason) throw new UsageError('writ break-glass <run-id> --reason "why the quorum cannot be reached" [--binding PREFIX] [--yes]')
  const client = operatorClient(io.env, values)
  const run = (await client.request('GET', `/v1/runs/${encodeURIComponent(id)}`)).json as ShownRun
  const binding = bindingToSend(run, values.binding)
  const phrase = `${terminalLine(run.action)} on ${terminalLine(run.node_name)}`
  io.err(`breaking the glass on run ${terminalLine(run.id)}: ${terminalLine(run.summary ?? run.action)}\n${describeRun(run)}`)
  io.err(`    this runs ${phrase} alone, without its ${run.approval?.quorum ?? '?'} approval(s); it is broadcast, audited and left for review\n`)
  if (io.interactive && io.ask && !values.yes) {
    const answer = (await io.ask(`Run ${phrase} alone? [y/N] `)).trim().toLowerCase()
    if (answer !== 'y' && answer !== 'yes') { io.err('not confirmed: nothing was run\n'); return EXIT.notConfirmed }
  }
  const { json } = await client.request('POST', `/v1/runs/${encodeURIComponent(id)}/break-glass`, { reason: values.reason, ...(binding !== undefined ? { binding } : {}) })
  const done = json as { id: string, status: string, status_reason: string, review: Review }
  if (values.json) io.out(`${terminalJson(done)}\n`)
  else io.out(`run ${terminalLine(done.id)}: ${terminalLine(done.status)} — ${terminalLine(done.status_reason)}\nreview ${terminalLine(done.review.id)} waits for another approver (writ ack ${terminalLine(done.review.id)})\n`)
  return EXIT.ok
}

export async function cmdReviews(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, open: { type: 'boolean', default: false } } })
  const { json } = await operatorClient(io.env, values).request('GET', `/v1/reviews${values.open ? '?open=true' : ''}`)
  const reviews = (json as { reviews: Review[] }).reviews
  if (values.json) { io.out(`${terminalJson(reviews, 2)}\n`); return EXIT.ok }
  if (reviews.length === 0) { io.err(values.open ? 'no break-glass review is open\n' : 'no break-glass runs\n'); return EXIT.ok }
  for (const r of reviews) {
    const state = r.acknowledged_at ? `acknowledged by ${terminalLine(r.acknowledged_by ?? '?')} at ${terminalLine(r.acknowledged_at)}` : 'OPEN: waiting for another approver'
    io.out(`${terminalLine(r.id)}  ${terminalLine(r.action)} on ${terminalLine(r.node)} by ${terminalLine(r.by)} at ${terminalLine(r.at)} — ${state}\n`)
    io.out(`    run:    ${terminalLine(r.run_id)}\n    reason: ${terminalLine(r.reason)}\n`)
  }
  return EXIT.ok
}

export async function cmdAck(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, comment: { type: 'string' } } })
  const id = positionals[0]
  if (!id) throw new UsageError('writ ack <review-id> [--comment "…"]')
  const { json } = await operatorClient(io.env, values).request('POST', `/v1/reviews/${encodeURIComponent(id)}/ack`, values.comment ? { comment: values.comment } : {})
  const r = json as Review
  if (values.json) io.out(`${terminalJson(r)}\n`)
  else io.out(`review ${terminalLine(r.id)} (run ${terminalLine(r.run_id)}, break-glass by ${terminalLine(r.by)}): acknowledged by ${terminalLine(r.acknowledged_by ?? '?')}\n`)
  return EXIT.ok
}
