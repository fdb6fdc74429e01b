/**
 * MCP at `/mcp`, as an agent uses it: the official SDK client over real HTTP
 * against the real app, real NATS and the real node-runner. The agent finds
 * and reads actions, runs a read and gets its real output, runs a gated action
 * and gets pending_approval with the portal link at once, and sees it succeed
 * after an operator approves over REST.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, type AuditEvent } from '@writ/control-plane'
import { auth, makeCpFixture, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { connectMcp } from './helpers/mcp-client.js'

/** Actions with long output, to see how an answer is cut for a model. */
function writeOutputPack(fx: CpFixture): void {
  const dir = join(fx.dir, 'packs', 'outputs')
  mkdirSync(join(dir, 'actions'), { recursive: true })
  writeFileSync(join(dir, 'pack.yaml'), 'schema_version: 1\nid: outputs\nname: Long outputs\nversion: 1.0.0\nactions: [actions/seq.yaml, actions/seq_lines.yaml]\n')
  const seq = (id: string, parser: string) => `schema_version: 1
id: outputs.${id}
title: Count to a number
kind: exec
risk: low
description: Prints the numbers from 1 to count, one a line.
side_effects: [None.]
args:
  - { name: count, type: integer, required: true, validation: { min: 1, max: 200000 } }
execution:
  command: { binary: /usr/bin/seq, argv: ["1", "{{ args.count }}"] }
  timeout: 10s
output: { parser: ${parser}, max_stdout_bytes: 2000000 }
`
  writeFileSync(join(dir, 'actions', 'seq.yaml'), seq('seq', 'text'))
  writeFileSync(join(dir, 'actions', 'seq_lines.yaml'), seq('seq_lines', 'lines'))
}

async function startMcpSuite(t: { teardown(fn: () => unknown): void }) {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  writeOutputPack(fx)
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const auditOf = async (q: string): Promise<AuditEvent[]> => {
    const res = await fetch(`${url}/v1/audit?${q}`, { headers: auth(fx.tokens.operator) })
    return (await res.text()).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  return { nats, fx, app, url, runner, auditOf }
}

t.test('an agent over MCP: find, read, run, and a gated run decided by a person', async (t) => {
  const { fx, url, auditOf } = await startMcpSuite(t)
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())

  t.equal(agent.transport.protocolVersion, '2025-11-25', 'a client opening with initialize gets the 2025-11-25 revision')
  t.match(agent.client.getServerVersion(), { name: 'writ' })
  t.match(agent.client.getInstructions(), /you never approve/)

  const { tools } = await agent.client.listTools()
  t.same(tools.map((x) => x.name), ['list_nodes', 'list_packs', 'find_actions', 'get_action', 'run_action', 'wait_for_run', 'get_operation', 'recent_runs'])
  const listed = Buffer.byteLength(JSON.stringify({ tools }))
  t.ok(listed <= 10 * 1024, `tools/list is ${listed} bytes (at most 10 KiB)`)
  const byName = Object.fromEntries(tools.map((x) => [x.name, x]))
  for (const read of ['list_nodes', 'list_packs', 'find_actions', 'get_action', 'wait_for_run', 'get_operation', 'recent_runs']) t.match(byName[read]?.annotations, { readOnlyHint: true, openWorldHint: false }, `${read} is a read`)
  t.match(byName.run_action?.annotations, { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true })
  t.match(byName.run_action?.description, /reason.*required.*people who approve/)
  t.match(byName.run_action?.inputSchema, { required: ['action', 'reason'] }, 'node or targets: one of them')

  const nodes = await agent.call('list_nodes')
  t.match(nodes.value, { nodes: [{ name: 'host-1', online: true, packs: ['outputs', 'testops'] }] })

  const found = await agent.call('find_actions', { query: 'echo message' })
  t.match(found.value.actions, [{ id: 'testops.echo', title: 'Echo a message', risk: 'low', summary: 'Prints the message it is given.' }])
  t.notOk(JSON.stringify(found.value).includes('testops.wipe'), 'an action policy never allows is not a candidate')

  const contract = await agent.call('get_action', { action: 'testops.echo' })
  t.match(contract.value, {
    id: 'testops.echo', risk: 'low', side_effects: ['None.'],
    args: [{ name: 'message', type: 'string', required: true, validation: { pattern: '^[A-Za-z0-9 ._-]*$' } }],
    nodes: [{ name: 'host-1', online: true, policy: 'runs at once' }],
  })
  t.match((await agent.call('get_action', { action: 'testops.restart' })).value, { nodes: [{ name: 'host-1', policy: /needs 1 approval\(s\) from oncall/ }] })

  const echo = await agent.call('run_action', { action: 'testops.echo', node: 'host-1', args: { message: 'hello from mcp' }, reason: 'check the runner answers', session_id: 'mcp-1' })
  t.notOk(echo.isError)
  t.match(echo.value, { status: 'succeeded', exit_code: 0, node: 'host-1', session_id: 'mcp-1', output: { stdout: 'hello from mcp\n', stdout_chars: 15 } })
  t.notOk('next' in echo.value, 'nothing to do after a success')

  const listing = await agent.call('run_action', { action: 'testops.list', node: 'host-1', reason: 'see the folder', session_id: 'mcp-1' })
  t.match(listing.value, { status: 'succeeded', output: { stdout: /a\.txt/ } }, 'a list action returns its real listing')

  const started = Date.now()
  const gated = await agent.call('run_action', {
    action: 'testops.restart', node: 'host-1', reason: 'the worker is stuck', expected: 'it comes back within a minute',
    evidence: [echo.value.run_id], session_id: 'mcp-1', wait_seconds: 30,
  })
  t.ok(Date.now() - started < 10_000, 'a gated run answers at once, whatever wait_seconds says')
  t.notOk(gated.isError)
  const runId = gated.value.run_id as string
  t.match(gated.value, {
    status: 'pending_approval', status_reason: /waiting for 1 approval/,
    approval: { url: new RegExp(`/ui/runs/${runId}$`), quorum: 1, approvals_so_far: 0, approver_groups: ['oncall'], expires_at: String },
    next: /decide this in the writ portal.*You cannot approve it/,
  })

  const waiting = await agent.call('wait_for_run', { run_id: runId, wait_seconds: 1 })
  t.equal(waiting.value.status, 'pending_approval', 'waiting is bounded and decides nothing')

  const approve = await fetch(`${url}/v1/runs/${runId}/approve`, { method: 'POST', headers: { ...auth(fx.tokens.operator), 'content-type': 'application/json' }, body: JSON.stringify({ comment: 'go' }) })
  t.equal(approve.status, 200)
  let done = await agent.call('wait_for_run', { run_id: runId, wait_seconds: 20 })
  for (let i = 0; i < 5 && done.value.status !== 'succeeded'; i++) done = await agent.call('wait_for_run', { run_id: runId, wait_seconds: 20 })
  t.match(done.value, { status: 'succeeded', exit_code: 0, approval: { approved_by: [{ by: 'ops-1' }] } })

  const recent = await agent.call('recent_runs', { session_id: 'mcp-1' })
  t.same((recent.value.runs as Array<{ run_id: string }>).map((r) => r.run_id), [runId, listing.value.run_id, echo.value.run_id], 'the session\'s runs, newest first')

  const events = await auditOf(`run_id=${runId}`)
  t.match(events.find((e) => e.type === 'run.requested'), { actor: { id: 'agent-1' }, data: { reason: 'the worker is stuck', expected: 'it comes back within a minute', evidence: [echo.value.run_id], session_id: 'mcp-1' } })
  t.ok(events.some((e) => e.type === 'approval.granted' && e.actor?.id === 'ops-1'), 'the approval is on the record')
})

t.test('output sized for a model: head and tail kept, the cut stated, parsed when there is a parser', async (t) => {
  const { fx, url } = await startMcpSuite(t)
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const full = Array.from({ length: 50_000 }, (_, i) => `${i + 1}\n`).join('')

  const text = await agent.call('run_action', { action: 'outputs.seq', node: 'host-1', args: { count: 50_000 }, reason: 'long output' })
  const out = text.value.output as { stdout: string, stdout_chars: number, cut: string[], next_cursor: number }
  t.equal(out.stdout_chars, full.length)
  t.ok(out.stdout.length <= 12_000, `stdout cut to ${out.stdout.length} characters`)
  t.ok(out.stdout.startsWith('1\n2\n3\n') && out.stdout.endsWith('49999\n50000\n'), 'the head and the tail are kept')
  t.match(out.stdout, /\n… \[\d+ characters cut\] …\n/)
  t.match(out.cut, [/stdout: characters \d+–\d+ of 288894 cut; call wait_for_run with cursor \d+/])
  t.equal(full.slice(0, out.next_cursor), out.stdout.slice(0, out.next_cursor), 'next_cursor is where the head stops')

  const page = await agent.call('wait_for_run', { run_id: text.value.run_id, cursor: out.next_cursor })
  const paged = page.value.output as { stdout: string, next_cursor: number }
  t.equal(paged.stdout, full.slice(out.next_cursor, out.next_cursor + paged.stdout.length), 'reading on from the cursor returns the raw text that followed')
  t.equal(paged.next_cursor, out.next_cursor + paged.stdout.length)

  const lines = await agent.call('run_action', { action: 'outputs.seq_lines', node: 'host-1', args: { count: 50_000 }, reason: 'long parsed output' })
  const parsed = lines.value.output as { parsed: string[], stdout?: string, cut: string[] }
  t.notOk('stdout' in parsed, 'the raw text is not repeated next to the parsed value')
  t.same(parsed.parsed.slice(0, 3), ['1', '2', '3'])
  t.same(parsed.parsed.slice(-2), ['49999', '50000'])
  t.match(parsed.parsed.find((x) => x.startsWith('…')), /^… \d+ of 50000 items cut …$/)
  t.match(parsed.cut, [/parsed \$: \d+ of 50000 items cut from the middle/, /stdout is not repeated/])
  t.ok(JSON.stringify(lines.value).length < 14_000, 'the whole answer stays near the budget')
})

t.test('clients on the 2026-07-28 revision, and any instance answers any request', async (t) => {
  const { fx, url } = await startMcpSuite(t)
  const modern = await connectMcp(url, fx.tokens.agent, { mode: 'auto' })
  t.teardown(() => modern.close())
  t.equal(modern.transport.protocolVersion, '2026-07-28')
  t.match((await modern.call('run_action', { action: 'testops.echo', node: 'host-1', args: { message: 'modern' }, reason: 'modern client' })).value, { status: 'succeeded', output: { stdout: 'modern\n' } })

  const older = await fetch(`${url}/mcp`, {
    method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'old', version: '1' } } }),
  })
  t.match(await older.text(), /"protocolVersion":"2025-06-18"/, 'a 2025-06-18 client keeps its revision')

  // A second control plane on the same NATS: requests of one connection alternate between the two.
  const other = await buildApp(fx.config)
  t.teardown(() => other.close())
  const otherUrl = await other.listen({ host: '127.0.0.1', port: 0 })
  await eventually(() => other.writ.fleet.find('host-1')?.online, 10_000, 'the second instance sees the runner')
  const served: string[] = []
  let i = 0
  const alternate: typeof fetch = (input, init) => {
    const base = i++ % 2 === 0 ? url : otherUrl
    served.push(base)
    return fetch(String(input).replace(url, base), init)
  }
  const agent = await connectMcp(url, fx.tokens.agent, { fetch: alternate })
  t.teardown(() => agent.close())
  const run = await agent.call('run_action', { action: 'testops.sleep', node: 'host-1', args: { seconds: 1 }, reason: 'span two instances', wait_seconds: 0 })
  t.match(run.value, { status: /dispatched|running/ })
  let seen = await agent.call('wait_for_run', { run_id: run.value.run_id, wait_seconds: 10 })
  for (let k = 0; k < 5 && seen.value.status !== 'succeeded'; k++) seen = await agent.call('wait_for_run', { run_id: run.value.run_id, wait_seconds: 10 })
  t.equal(seen.value.status, 'succeeded')
  t.ok(new Set(served).size === 2, `both instances served the one connection (${served.length} requests)`)
})
