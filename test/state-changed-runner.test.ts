/**
 * Approvals that lapse when the world changes, end to end with a real
 * node-runner process: the impact preview reads the allocation (or the
 * node's allocations), the approval binds its Nomad ModifyIndex, and when
 * Nomad moves on between the approval and the dispatch the runner refuses
 * `state_changed`, naming what changed — and nothing reaches Nomad's write
 * endpoint. Unchanged, the same flow stops the allocation exactly once.
 *
 * Real: NATS, the control plane, the node-runner (its own process). Double:
 * the Nomad HTTP API (fixture wire format), which lets the test bump an
 * allocation's ModifyIndex.
 *
 * Writes test/artifacts/state-changed-transcript.md.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture, runnerJournal } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'
import { startRunnerProcess } from './helpers/runner-process.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { artifactsDir } from './helpers/browser.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

// The runner's node id is its Nomad node id: it acts on allocations of its own node only.
const NODE = 'c0ffee00-1111-4222-8333-444455556666'
const ALLOC = '7d2e5f3a-0b1c-4d2e-8f30-415263748596'
const OTHER = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'

t.test('an allocation changed between approval and dispatch is refused state_changed by the runner', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const nomad = await startNomadDouble({
    extraAllocs: [
      allocationLike({ id: ALLOC, nodeId: NODE, jobId: 'web', taskGroup: 'app' }),
      allocationLike({ id: OTHER, nodeId: NODE, jobId: 'cache', taskGroup: 'redis' }),
    ],
  })
  t.teardown(() => nomad.close())
  const app = await buildApp(parseConfig({ ...fx.config, packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] } }))
  t.teardown(() => app.close())
  const runner = await startRunnerProcess(fx, nats.url, NODE, { packDirs: [...fx.config.packs.dirs, STOCK_PACKS], flags: ['--nomad-addr', nomad.addr] })
  t.teardown(() => runner.stop())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const transcript: string[] = [`# Approvals that lapse when the world changes — ${new Date().toISOString()}`, '']
  const say = (line: string): void => { transcript.push(line); t.comment(line) }
  const ask = async (action: string, args: Record<string, unknown>): Promise<{ id: string, status: string, approval: { binding: string }, state?: Record<string, unknown> }> => {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node: NODE, args, reason: 'the web tier is wedged; restart its allocation' } })
    t.equal(res.statusCode, 202, res.body)
    return res.json()
  }
  const run = async (id: string, wait = 0) => (await app.inject({ method: 'GET', url: `/v1/runs/${id}${wait ? `?wait=${wait}` : ''}`, headers: auth(fx.tokens.operator) })).json()
  const boundState = async (id: string) => {
    let bound: Record<string, any> | undefined
    await eventually(async () => { bound = await run(id); return bound?.state !== undefined }, 10_000, 'the previewed state bound to the approval')
    return bound as Record<string, any>
  }
  const stops = () => nomad.requests.filter((r) => r.method === 'POST' || r.method === 'PUT')

  t.test('the allocation moved: refused state_changed, nothing called', async (t) => {
    const asked = await ask('nomad.alloc_stop', { alloc_id: ALLOC })
    t.match(asked.state, { kind: 'allocation', id: ALLOC, modify_index: 57 }, 'the answer comes once the preview read the allocation: its binding never changes under an approver')
    say(`1. agent-1 asks nomad.alloc_stop ${ALLOC} → ${asked.status}; the impact preview read the allocation first`)
    const pending = await boundState(asked.id)
    t.equal(pending.approval.binding, asked.approval.binding)
    say(`2. the approval is bound to ModifyIndex ${pending.state.modify_index} (binding ${pending.approval.binding.slice(0, 16)}…, preview digest ${String(pending.state.preview_digest).slice(0, 16)}…)`)

    const visitor = new PortalVisitor(app)
    await visitor.signIn(fx.tokens.operator)
    const page = await visitor.get(`/ui/runs/${asked.id}`)
    t.match(page.body, /approved state: index 57/)
    say(`3. ops-1 opens the run page: "${/approved state: index \d+[^<;]*/.exec(page.body)?.[0] ?? ''}"`)

    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const show = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
      execFile(process.execPath, [join(REPO_ROOT, 'control-plane', 'dist', 'cli.js'), 'show', asked.id], { env: { ...process.env, WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator } },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }))
    })
    t.match(show.stdout, `approved state: index 57 (allocation ${ALLOC})`, show.stderr)

    const bump = nomad.bumpAllocation(ALLOC)
    say(`4. meanwhile Nomad updates the allocation: ModifyIndex ${bump.from} → ${bump.to}`)
    const approved = await app.inject({ method: 'POST', url: `/v1/runs/${asked.id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: pending.approval.binding } })
    t.equal(approved.statusCode, 200, approved.body)
    const done = await run(asked.id, 10)
    t.match(done, { status: 'refused_by_runner', refusal: { code: 'state_changed' } })
    t.match(done.refusal.message, `allocation ${ALLOC.slice(0, 8)}… ModifyIndex 57 → ${bump.to}`)
    say(`5. ops-1 approves → the runner refuses: ${done.status} (${done.refusal.code}): ${done.refusal.message}`)
    t.same(stops(), [], 'Nomad received no write')
    const journal = runnerJournal(fx, NODE)
    t.match(journal.find((e) => e.type === 'accepted' && e.run_id === asked.id)?.data, { state: { kind: 'allocation', id: ALLOC, modify_index: 57 } }, 'the runner journaled the state it was to check')
    t.match(journal.find((e) => e.type === 'finished' && e.run_id === asked.id)?.data, { status: 'refused' })

    const audit = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${asked.id}`, headers: auth(fx.tokens.operator) })
    const events = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
    t.ok(events.some((e) => e.type === 'approval.state_bound' && (e.data.state as { modify_index: number }).modify_index === 57), 'the binding of the state is audited')
    say(`6. audit trail of the run: ${events.map((e) => e.type).join(' → ')}`)
  })

  t.test('nothing moved: the same flow stops the allocation once', async (t) => {
    const asked = await ask('nomad.alloc_stop', { alloc_id: OTHER })
    const pending = await boundState(asked.id)
    const approved = await app.inject({ method: 'POST', url: `/v1/runs/${asked.id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: pending.approval.binding } })
    t.equal(approved.statusCode, 200, approved.body)
    const done = await run(asked.id, 10)
    t.equal(done.status, 'succeeded', done.status_reason)
    t.same(stops().map((r) => r.path), [`/v1/allocation/${OTHER}/stop`])
    say(`7. control: nomad.alloc_stop ${OTHER} approved at ModifyIndex ${pending.state.modify_index}, unchanged → ${done.status}; Nomad saw one POST ${stops()[0]?.path}`)
  })

  t.test('a drain is refused too when the allocations on its node changed', async (t) => {
    const asked = await ask('nomad.node_drain', { node_id: NODE })
    const pending = await boundState(asked.id)
    t.match(pending.state, { kind: 'node_allocations', id: NODE })
    const bump = nomad.bumpAllocation(OTHER)
    const before = stops().length
    const approved = await app.inject({ method: 'POST', url: `/v1/runs/${asked.id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: pending.approval.binding } })
    t.equal(approved.statusCode, 200, approved.body)
    const done = await run(asked.id, 10)
    t.match(done, { status: 'refused_by_runner', refusal: { code: 'state_changed' } })
    t.match(done.refusal.message, `allocations on node ${NODE.slice(0, 8)}… changed`)
    t.equal(stops().length, before, 'Nomad received no write')
    say(`8. nomad.node_drain of ${NODE.slice(0, 8)}… approved at highest ModifyIndex ${pending.state.modify_index}; an allocation moves to ${bump.to} → ${done.refusal.code}: ${done.refusal.message}`)
  })

  t.teardown(() => writeFileSync(join(artifactsDir(), 'state-changed-transcript.md'), `${transcript.join('\n')}\n`))
})
