/**
 * Plans end to end with real runners: one request reaches several nodes, the
 * results come back grouped by identical output, each target is also an
 * ordinary run, a gated plan waits for one decision covering all its
 * targets, and the rollout's batches, error budget and halt hold.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { readJournal, type JournalWitness } from '@writ/packs'
import { loadTrustedKey } from '@writ/packs/protocol'
import { GENESIS_HASH, hashEvent, verifyAudit, type StoredEvent } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { auth, runnerJournalPath, startCpSuite, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

const NODES = ['plan-a', 'plan-b', 'plan-c', 'plan-d']
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')
let app: FastifyInstance
let fx: CpFixture
const runners: NodeRunner[] = []

t.before(async () => {
  const suite = await startCpSuite(t)
  app = suite.app; fx = suite.fx
  for (const n of NODES) runners.push(await startRealRunner(fx, suite.nats.url, n))
  await eventually(() => NODES.every((n) => app.writ.fleet.find(n)?.online), 10_000, 'runner heartbeats')
})
t.teardown(async () => { for (const r of runners) await r.close() })

const plan = (token: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/plans', headers: auth(token), payload: { reason: 'plan test', ...payload } })
const get = (token: string, url: string) => app.inject({ method: 'GET', url, headers: auth(token) })

t.test('one request, four nodes, one grouped answer; each target is a run', async (t) => {
  const res = await plan(fx.tokens.agent, { action: 'testops.echo', args: { message: 'same everywhere' }, targets: { nodes: NODES }, wait: 20 })
  t.equal(res.statusCode, 200, res.body)
  const view = res.json()
  t.equal(view.status, 'succeeded')
  t.equal(view.counts.succeeded, 4)
  t.equal(view.groups.length, 1, 'identical output is one group')
  t.match(view.groups[0], { count: 4, status: 'succeeded', output: 'same everywhere\n' })
  t.same([...view.groups[0].nodes].sort(), NODES)
  t.match(view.summary, /^4 nodes: succeeded — same everywhere/)
  t.equal(view.targets.length, 4)
  const run = await get(fx.tokens.agent, `/v1/runs/${view.targets[2].run_id}`)
  t.equal(run.statusCode, 200, run.body)
  t.match(run.json(), { id: view.targets[2].run_id, status: 'succeeded', node_name: view.targets[2].node, plan: { id: view.plan_id, position: 2 }, result: { stdout: 'same everywhere\n', exit_code: 0 } })
  const other = await get(fx.tokens.agent2, `/v1/runs/${view.targets[2].run_id}`)
  t.equal(other.statusCode, 404, 'another agent does not see it')
  const audit = await get(fx.tokens.operator, `/v1/audit?run_id=${view.plan_id}`)
  const types = audit.body.trim().split('\n').map((l) => JSON.parse(l).type as string)
  t.same(types.slice(0, 2), ['plan.requested', 'plan.dispatched'], 'the plan is on the chain before anything leaves')
  t.ok(types.includes('plan.results'))
  t.equal(types.at(-1), 'plan.finished')
})

t.test('different outputs are different groups', async (t) => {
  const res = await plan(fx.tokens.agent, { action: 'testops.echo', args: { message: 'x' }, targets: { nodes: NODES.slice(0, 2) }, wait: 20 })
  t.equal(res.json().status, 'succeeded')
  const res2 = await plan(fx.tokens.operator, { action: 'testops.sleep', args: { seconds: 5 }, targets: { nodes: NODES.slice(0, 2) }, wait: 20 })
  t.match(res2.json(), { status: 'failed', counts: { timed_out: 2 } })
})

t.test('a gated plan waits for one decision over its root, then runs every target', async (t) => {
  const res = await plan(fx.tokens.agent, { action: 'testops.restart', targets: { nodes: NODES }, rollout: { batch: 2 } })
  t.equal(res.statusCode, 202, res.body)
  const view = res.json()
  t.match(view, { status: 'pending_approval', approval: { quorum: 1, approver_groups: ['oncall'] }, counts: { pending_approval: 4 } })
  const self = await app.inject({ method: 'POST', url: `/v1/plans/${view.plan_id}/approve`, headers: auth(fx.tokens.agentsOperator), payload: {} })
  t.equal(self.json().error.code, 'WRIT_ERR_SELF_APPROVAL')
  const wrong = await app.inject({ method: 'POST', url: `/v1/plans/${view.plan_id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: 'a'.repeat(64) } })
  t.equal(wrong.json().error.code, 'WRIT_ERR_BINDING_MISMATCH')
  const ok = await app.inject({ method: 'POST', url: `/v1/plans/${view.plan_id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: view.approval.binding } })
  t.equal(ok.statusCode, 200, ok.body)
  const done = await get(fx.tokens.agent, `/v1/plans/${view.plan_id}?wait=20`)
  t.match(done.json(), { status: 'succeeded', counts: { succeeded: 4 } })
  const again = await app.inject({ method: 'POST', url: `/v1/plans/${view.plan_id}/approve`, headers: auth(fx.tokens.operator2), payload: {} })
  t.equal(again.json().error.code, 'WRIT_ERR_ALREADY_DECIDED')
})

t.test('denied by a person: nothing runs', async (t) => {
  const res = await plan(fx.tokens.agent, { action: 'testops.restart', targets: { nodes: NODES.slice(0, 2) } })
  const id = res.json().plan_id
  const deny = await app.inject({ method: 'POST', url: `/v1/plans/${id}/deny`, headers: auth(fx.tokens.operator), payload: { reason: 'not now' } })
  t.match(deny.json(), { status: 'denied', counts: { denied: 2 }, approval: { denial: { by: 'ops-1', reason: 'not now' } } })
})

t.test('a node whose runner went away between the plan and its approval ends node_offline at once, not lost', async (t) => {
  const extra = await startRealRunner(fx, (app.writ.config.nats.servers[0] as string), 'plan-gone')
  await eventually(() => app.writ.fleet.find('plan-gone')?.online, 10_000, 'plan-gone online')
  const res = await plan(fx.tokens.agent, { action: 'testops.restart', targets: { nodes: ['plan-a', 'plan-gone'] } })
  const id = res.json().plan_id
  await extra.close()
  const ok = await app.inject({ method: 'POST', url: `/v1/plans/${id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(ok.statusCode, 200, ok.body)
  const done = (await get(fx.tokens.agent, `/v1/plans/${id}?wait=20`)).json()
  t.match(done, { status: 'partially_failed', counts: { succeeded: 1, node_offline: 1 } })
  t.match(done.groups.find((g: { status: string }) => g.status === 'node_offline'), { nodes: ['plan-gone'], output: /no runner is listening for node plan-gone/ })
})

t.test('the error budget: once failures exceed max_errors no new target is dispatched', async (t) => {
  const res = await plan(fx.tokens.operator, {
    action: 'testops.sleep', args: { seconds: 5 }, targets: { nodes: NODES }, rollout: { batch: 1, max_errors: 0 }, wait: 30,
  })
  const view = res.json()
  t.equal(view.status, 'halted', view.status_reason)
  t.equal(view.counts.timed_out, 1, 'only the first target ran')
  t.equal(view.counts.canceled, 3, 'the rest were never dispatched')
  t.match(view.halt, { by: 'control-plane' })
})

t.test('the CLI: writ run --select and --nodes make a plan and print its groups; writ plan reads one', async (t) => {
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const writ = (args: string[], token = fx.tokens.agent) => new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_URL: url, WRIT_TOKEN: token } }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }))
  })
  const sel = await writ(['run', 'testops.echo', '--select', 'ID matches "^plan-[ab]$"', '--arg', 'message=from the cli', '--reason', 'cli plan'])
  t.equal(sel.code, 0, sel.stderr)
  t.match(sel.stdout, /^ {4}2 node\(s\) {2}succeeded {2}plan-a, plan-b\n {9}from the cli\n$/)
  t.match(sel.stderr, /plan p[0-9a-z]+: succeeded — 2 of 2 target\(s\) succeeded/)
  const gated = await writ(['run', 'testops.restart', '--nodes', 'plan-c,plan-d', '--reason', 'cli gated plan'])
  t.equal(gated.code, 3, 'waiting for approval')
  const id = /plan (p[0-9a-z]+) waits for approval/.exec(gated.stderr)?.[1] as string
  t.ok(id, gated.stderr)
  const read = await writ(['plan', id])
  t.equal(read.code, 3)
  t.match(read.stderr, /pending_approval/)
  const both = await writ(['run', 'testops.echo', '--node', 'plan-a', '--nodes', 'plan-b', '--arg', 'message=x', '--reason', 'r'])
  t.equal(both.code, 2)
  t.match(both.stderr, /one of --node, --select or --nodes/)
})

t.test('writ audit verify accounts for every plan target, and the runners\' journals witness the plans\' requests', async (t) => {
  const stored: StoredEvent[] = []
  for await (const e of app.writ.audit.read()) stored.push(e)
  const witnesses: JournalWitness[] = NODES.flatMap((n) => {
    const read = readJournal(readFileSync(runnerJournalPath(fx, n), 'utf8'), n)
    return read.ok ? read.witnesses : []
  })
  const planWitnesses = witnesses.filter((w) => /^p[0-9a-z]+-\d+$/.test(w.runId))
  t.ok(planWitnesses.length >= 10, `${planWitnesses.length} plan targets witnessed in the journals`)
  const trusted = [loadTrustedKey(readFileSync(fx.publicKeyFile, 'utf8'))]
  const report = await verifyAudit(stored, { trusted, witnesses, graceMs: 3_600_000 })
  t.same(report.problems, [], 'the chain verifies with every plan target accounted for')
  t.equal(report.witnesses.onChain, witnesses.length, 'every witnessed request, plan targets included, is on the chain')
  t.match(report.notes.join('\n'), /plan\(s\) with \d+ target\(s\) accounted for/)

  // A chain that lost one target's outcome event (rebuilt by someone with the keys, so the links still hold) is caught.
  const events = stored.map((e) => JSON.parse(e.text) as { type: string, data: Record<string, unknown> })
  const results = events.find((e) => e.type === 'plan.results' && (e.data.results as unknown[]).length > 1) as unknown as { data: { results: unknown[] } }
  results.data.results = results.data.results.slice(1)
  let prev = GENESIS_HASH
  const rebuilt = events.map((e, i) => {
    const { hash: _h, ...rest } = e as unknown as Record<string, unknown>
    const unsealed = { ...rest, seq: i + 1, prev } as Parameters<typeof hashEvent>[0]
    prev = hashEvent(unsealed)
    return { text: JSON.stringify({ ...unsealed, hash: prev }) }
  })
  const tampered = await verifyAudit(rebuilt, { trusted, graceMs: 3_600_000 })
  t.match(tampered.problems.join('\n'), /target\(s\) have neither a dispatch and an outcome/, 'a target without its outcome event is reported')
})
