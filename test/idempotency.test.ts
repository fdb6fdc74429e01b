/**
 * Operations that survive a lost reply: `run_action` with `operation_id` and
 * `POST /v1/runs` with `Idempotency-Key`. A client sends a request, drops the
 * socket before any reply, and retries with the same key: it gets the same
 * run, and the runner executes each operation exactly once (counted in its
 * own journal). Also: a key reused with other arguments, another principal's
 * key, concurrent retries on two replicas, a gated run, get_operation and
 * list_packs. Real HTTP (node:http for the dropped requests), real NATS, the
 * real runner.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { buildApp } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { connectMcp } from './helpers/mcp-client.js'

/** Sends a POST and destroys the socket as soon as the request is written: its reply is lost, whatever the server did. */
function sendAndDrop(base: string, path: string, headers: Record<string, string>, body: object): Promise<void> {
  const text = JSON.stringify(body)
  const u = new URL(path, base)
  return new Promise((resolve) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } })
    req.once('error', () => resolve())
    req.once('close', () => resolve())
    req.once('response', () => { /* too late: the socket is already gone or going */ })
    req.end(text, () => req.destroy())
  })
}

/** The runner's own record of the writs it accepted and finished. */
function journal(file: string): Array<{ type: string, run_id: string }> {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch { return [] }
  return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string, run_id: string })
}

async function inBatches<T>(n: number, size: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < n; i += size) out.push(...await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, j) => fn(i + j))))
  return out
}

t.test('idempotency keys on run_action and POST /v1/runs', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { runs: { writ_ttl: '60s', ack_timeout: '2s', lost_grace: '1s', sweep_interval: '200ms', max_wait: '30s', max_pending_per_requester: 50 },
    // Some 800 requests from one agent in this suite: the per-principal rate limit is not what is tested here.
    limits: { body_bytes: 64 * 1024, rate_per_minute: 100_000, failed_auth_per_minute: 30 },
    // 200 ms heartbeats: a busy machine must not make the node look offline in the middle of the burst.
    fleet: { offline_after_missed: 50 } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const journalFile = join(fx.dir, 'journal-host-1.jsonl')
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const post = (token: string, body: object, key?: string) => fetch(`${url}/v1/runs`, {
    method: 'POST', headers: { ...auth(token), 'content-type': 'application/json', ...(key !== undefined ? { 'idempotency-key': key } : {}) }, body: JSON.stringify(body),
  })
  const echo = (i: number, surface: string) => ({ action: 'testops.echo', node: 'host-1', args: { message: `${surface} ${i}` }, reason: `lost reply ${surface} ${i}` })

  await t.test('100 REST and 100 MCP requests whose replies are dropped, then retried: 0 duplicate runs', async (t) => {
    const before = journal(journalFile).filter((e) => e.type === 'accepted').length
    let arrived = 0
    let restReplayed = 0
    const stopCounting = await app.writ.onAudit((e) => { if (e.type === 'run.requested' && e.actor?.id === 'agent-1') arrived++ })
    t.teardown(stopCounting)
    const restIds = await inBatches(100, 10, async (i) => {
      const key = `rest-drop-${i}`
      // Some dropped requests reach the server and some do not; the same key is sent again either way.
      await sendAndDrop(url, '/v1/runs', { ...auth(fx.tokens.agent), 'idempotency-key': key }, echo(i, 'rest'))
      const res = await post(fx.tokens.agent, echo(i, 'rest'), key)
      t.ok(res.status === 200 || res.status === 202, `retry ${i} answered ${res.status}`)
      if (res.headers.get('idempotent-replayed') === 'true') restReplayed++
      return ((await res.json()) as { id: string }).id
    })
    const mcpIds = await inBatches(100, 10, async (i) => {
      const key = `mcp-drop-${i}`
      const args = { ...echo(i, 'mcp'), wait_seconds: 0, operation_id: key }
      await sendAndDrop(url, '/mcp', { ...auth(fx.tokens.agent), accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'run_action', arguments: args } })
      const answer = await agent.call('run_action', args)
      t.notOk(answer.isError, `retry ${i} is the run, not a failure`)
      return answer.value.run_id as string
    })
    const all = [...restIds, ...mcpIds]
    t.equal(new Set(restIds).size, 100, '100 REST operations, 100 runs')
    t.equal(new Set(mcpIds).size, 100, '100 MCP operations, 100 runs')
    for (let i = 0; i < 100; i++) {
      const again = await post(fx.tokens.agent, echo(i, 'rest'), `rest-drop-${i}`)
      t.equal(((await again.json()) as { id: string }).id, restIds[i], `a later retry of rest-drop-${i} still names its run`)
      t.equal(again.headers.get('idempotent-replayed'), 'true')
    }
    let seen = ''
    const accepted = await eventually(() => {
      const entries = journal(journalFile)
      const a = entries.filter((e) => e.type === 'accepted')
      const finished = new Set(entries.filter((e) => e.type === 'finished').map((e) => e.run_id))
      seen = `${a.length - before} accepted, ${all.filter((id) => finished.has(id)).length} of ${all.length} keyed runs finished, statuses ${app.writ.store.list({ requester: 'agent-1' }, 10_000).map((r) => r.status).sort().join(',').replace(/(\w+)(,\1)*/g, (m, w: string) => `${w}×${m.split(',').length}`)}`
      // Done when every keyed run has ended: those dispatched have finished on the runner.
      const ended = all.every((id) => { const r = app.writ.store.list({ requester: 'agent-1' }, 10_000).find((x) => x.id === id); return r !== undefined && ['succeeded', 'failed', 'node_offline', 'refused_by_runner', 'lost', 'timed_out'].includes(r.status) })
      return ended && all.every((id) => finished.has(id) || app.writ.store.list({ requester: 'agent-1' }, 10_000).find((x) => x.id === id)?.status !== 'succeeded') ? a : undefined
    }, 60_000, 'every keyed run ended').catch((err: Error) => { t.comment(seen); throw err })
    const byRun = new Map<string, number>()
    for (const e of accepted) byRun.set(e.run_id, (byRun.get(e.run_id) ?? 0) + 1)
    const dispatched = app.writ.store.list({ requester: 'agent-1', action: 'testops.echo' }, 10_000).filter((r) => r.reason.startsWith('lost reply') && r.status === 'succeeded').length
    const keyedDispatches = all.reduce((n, id) => n + (byRun.get(id) ?? 0), 0)
    const duplicates = [...byRun.values()].filter((n) => n > 1).length
    const keyedRuns = app.writ.store.list({ requester: 'agent-1', action: 'testops.echo' }, 10_000).filter((r) => r.reason.startsWith('lost reply')).length
    t.comment(`dropped-reply figures: 200 operations (100 REST, 100 MCP), each sent with its key and its socket dropped before any reply, then retried (REST retried 100 more times later);`)
    t.comment(`  REST requests the server had already taken when their socket dropped (the retry was answered as a replay): ${restReplayed} of 100`)
    t.comment(`  runs recorded for the keyed requests: ${keyedRuns}; distinct run ids in the retries' answers: ${new Set(all).size}; writs the runner accepted for them: ${keyedDispatches}; run ids accepted twice: ${duplicates}; runs requested (audit run.requested): ${arrived}; succeeded: ${dispatched}`)
    t.equal(keyedRuns, 200, 'one run per key')
    const sent = app.writ.store.list({ requester: 'agent-1', action: 'testops.echo' }, 10_000).filter((r) => r.reason.startsWith('lost reply') && r.status !== 'node_offline').length
    t.equal(keyedDispatches, sent, 'the runner executed each keyed operation that was sent to it once')
    t.comment(`  ${sent} of the 200 runs were sent to the runner (a run for a node that looked offline is never sent)`)
    t.equal(duplicates, 0, 'no run was dispatched twice')
  })

  await t.test('a key names one request: other arguments are refused, and change nothing', async (t) => {
    const first = await post(fx.tokens.agent, echo(1, 'reuse'), 'reuse-1')
    t.ok(first.status === 200 || first.status === 202, 'the run')
    const runsBefore = app.writ.store.list({ requester: 'agent-1' }, 10_000).length
    const other = await post(fx.tokens.agent, echo(2, 'reuse'), 'reuse-1')
    t.equal(other.status, 422)
    t.match(await other.json(), { error: { code: 'WRIT_ERR_OPERATION_KEY_REUSED', message: /operation "reuse-1" was first sent with other arguments/ } })
    const viaMcp = await agent.call('run_action', { ...echo(3, 'reuse'), operation_id: 'reuse-1' })
    t.ok(viaMcp.isError)
    t.match(viaMcp.value, { status: 'invalid_arguments', code: 'WRIT_ERR_OPERATION_KEY_REUSED', next: /give a new one for a new request/ })
    const waited = await post(fx.tokens.agent, { ...echo(1, 'reuse'), wait: 5 }, 'reuse-1')
    t.equal(((await waited.json()) as { id: string }).id, ((await first.json()) as { id: string }).id, 'how long to wait is not part of the request: same run')
    t.equal(app.writ.store.list({ requester: 'agent-1' }, 10_000).length, runsBefore, 'no run was added')

    const bad = await post(fx.tokens.agent, echo(1, 'badkey'), 'has space')
    t.equal(bad.status, 400)
    t.match(await bad.json(), { error: { code: 'WRIT_ERR_BAD_OPERATION_KEY', message: /Idempotency-Key header must be/ } })

    const refused = await post(fx.tokens.agent, { ...echo(1, 'fixed'), args: { message: 'bad;chars' } }, 'fix-then-retry')
    t.equal(refused.status, 400, 'arguments the action refuses')
    const fixed = await post(fx.tokens.agent, { ...echo(1, 'fixed'), args: { message: 'bad;chars' } }, 'fix-then-retry')
    t.equal(fixed.status, 400, 'the same refused request is refused again, not stuck')
    const other2 = await post(fx.tokens.agent, echo(1, 'fixed'), 'fix-then-retry')
    t.ok(other2.status === 200 || other2.status === 202, 'a refusal that recorded nothing leaves the key free for the corrected request')
  })

  await t.test("keys are per principal: another agent's same key is its own operation", async (t) => {
    const mine = (await (await post(fx.tokens.agent, echo(1, 'shared'), 'shared-key')).json()) as { id: string }
    const theirs = await post(fx.tokens.agent2, echo(1, 'shared'), 'shared-key')
    t.ok(theirs.status === 200 || theirs.status === 202)
    t.not(((await theirs.json()) as { id: string }).id, mine.id)
    const lookup = await createAgent2(url, fx.tokens.agent2)
    t.teardown(() => lookup.close())
    const op = await lookup.call('get_operation', { operation_id: 'mcp-drop-0' })
    t.match(op.value, { status: 'not_found', code: 'WRIT_ERR_OPERATION_NOT_FOUND' }, "another agent cannot read agent-1's operations")
  })

  await t.test('20 concurrent requests with one key on two replicas: one run', async (t) => {
    const app2 = await buildApp(fx.config)
    t.teardown(() => app2.close())
    const url2 = await app2.listen({ host: '127.0.0.1', port: 0 })
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${i % 2 ? url2 : url}/v1/runs`, {
      method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json', 'idempotency-key': 'race-1' }, body: JSON.stringify(echo(1, 'race')),
    }).then(async (r) => ({ status: r.status, id: ((await r.json()) as { id: string }).id }))))
    t.ok(answers.every((a) => a.status === 200 || a.status === 202), 'every request is answered with the run')
    t.equal(new Set(answers.map((a) => a.id)).size, 1, 'all name one run')
    t.equal(app.writ.store.list({ requester: 'agent-1' }, 10_000).filter((r) => r.reason === 'lost reply race 1').length, 1, 'one run recorded')
  })

  await t.test('a gated run: the retry finds it waiting for approval, and get_operation tells what became of it', async (t) => {
    const args = { action: 'testops.restart', node: 'host-1', args: {}, reason: 'restart after the lost reply', wait_seconds: 0, operation_id: 'gated-1' }
    const first = await agent.call('run_action', args)
    t.match(first.value, { status: 'pending_approval' })
    const again = await agent.call('run_action', args)
    t.match(again.value, { status: 'pending_approval', run_id: first.value.run_id }, 'the same run, still waiting')
    t.equal(app.writ.store.list({ requester: 'agent-1', action: 'testops.restart' }, 100).length, 1, 'one run waits for approval')
    const op = await agent.call('get_operation', { operation_id: 'gated-1' })
    t.match(op.value, { operation_id: 'gated-1', state: 'done', run: { run_id: first.value.run_id, status: 'pending_approval', approval: { url: /\/ui\/runs\// } } })
    const unknown = await agent.call('get_operation', { operation_id: 'never-sent' })
    t.ok(unknown.isError)
    t.match(unknown.value, { status: 'not_found', code: 'WRIT_ERR_OPERATION_NOT_FOUND', next: /send the run_action again/ })
  })

  await t.test('a plan (run_action with targets): the retry gets the same plan', async (t) => {
    const args = { action: 'testops.echo', targets: { nodes: ['host-1'] }, args: { message: 'plan once' }, reason: 'a plan whose reply is lost', session_id: 'plan-once', wait_seconds: 0, operation_id: 'plan-1' }
    const first = await agent.call('run_action', args)
    t.notOk(first.isError)
    t.match(first.value, { plan_id: /^p/ })
    const again = await agent.call('run_action', { ...args, wait_seconds: 5 })
    t.equal(again.value.plan_id, first.value.plan_id, 'the same plan')
    const plans = (await (await fetch(`${url}/v1/plans?session_id=plan-once`, { headers: auth(fx.tokens.agent) })).json()) as { plans: Array<{ plan_id: string }> }
    t.same(plans.plans.map((p) => p.plan_id), [first.value.plan_id], 'one plan recorded')
    const op = await agent.call('get_operation', { operation_id: 'plan-1' })
    t.match(op.value, { operation_id: 'plan-1', state: 'done', plan: { plan_id: first.value.plan_id } })
  })

  await t.test('list_packs: the packs an agent can use', async (t) => {
    const { tools } = await agent.client.listTools()
    t.same(tools.map((x) => x.name), ['list_nodes', 'list_packs', 'find_actions', 'get_action', 'run_action', 'wait_for_run', 'get_operation', 'recent_runs'])
    const packs = await agent.call('list_packs')
    t.match(packs.value, { packs: [{ id: 'testops', name: 'Test ops', version: '1.0.0', actions: Number, nodes: 1 }] })
  })
})

function createAgent2(url: string, token: string) {
  return connectMcp(url, token)
}
