import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { parseDuration } from '@writ/packs'
import { subjects } from '@writ/packs/protocol'
import { verifyChain, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

t.test('node and runner faults end in typed statuses, promptly, and nothing is re-dispatched', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const start = (nodeId: string) => startFakeRunner({ natsUrl: nats.url, nodeId, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, heartbeatIntervalMs: 200 })
  const run = (node: string, extra: Record<string, unknown> = {}) => app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.echo', node, args: { message: 'hi' }, reason: 'fault test', ...extra },
  })
  const auditTypes = async (runId: string): Promise<string[]> => {
    const res = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${runId}`, headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AuditEvent).type)
  }
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const sweepMs = parseDuration(app.writ.config.runs.sweep_interval) ?? 1000
  // Proving that something did NOT happen needs time to pass: until a few deadline sweeps after `moment` (the control plane's clock).
  const sweepsAfter = (moment: string | undefined, what: string) => {
    const until = Date.parse(moment ?? '') + 3 * sweepMs
    if (!Number.isFinite(until)) throw new Error(`no recorded time to wait from (${what})`)
    return eventually(() => Date.now() > until, 10_000, what)
  }

  t.test('a runner that just died: no responders → node_offline at once', async (t) => {
    const r = await start('gone-1')
    await eventually(() => app.writ.fleet.find('gone-1')?.online, 3000, 'online')
    await r.kill()
    const res = await run('gone-1', { wait: 10 })
    t.equal(res.statusCode, 200)
    // "No responders" answers at once; the ack timeout would read differently (runs.ack_timeout, then lost or refused).
    t.match(res.json(), { status: 'node_offline', status_reason: /no runner is listening/ })
    t.same(await auditTypes(res.json().id), ['run.requested', 'run.node_offline'])
  })

  t.test('a node whose heartbeats stopped: node_offline without sending anything', async (t) => {
    const r = await start('gone-2')
    await eventually(() => app.writ.fleet.find('gone-2')?.online, 3000, 'online')
    await r.kill()
    await eventually(() => app.writ.fleet.find('gone-2')?.online === false, 3000, 'offline after missed heartbeats')
    const nodes = await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.agent) })
    t.match(nodes.json().nodes.find((n: { id: string }) => n.id === 'gone-2'), { online: false })
    const res = await run('gone-2', { wait: 10 })
    t.match(res.json(), { status: 'node_offline', status_reason: /has not sent a heartbeat/ })
    t.same(await auditTypes(res.json().id), ['run.requested', 'run.node_offline'], 'decided from the fleet view: no writ was sent')
  })

  t.test('a runner that refuses: refused_by_runner with its reason', async (t) => {
    const r = await start('refuser')
    t.teardown(() => r.close())
    r.mode = 'refuse'
    await eventually(() => app.writ.fleet.find('refuser')?.online, 3000, 'online')
    const res = await run('refuser', { wait: 5 })
    t.match(res.json(), { status: 'refused_by_runner', refusal: { code: 'bad_args' }, status_reason: /runner refused \(bad_args\)/ })
    t.same(await auditTypes(res.json().id), ['run.requested', 'run.refused'])
  })

  t.test('a runner that dies mid-run: lost after the deadline, never re-dispatched', async (t) => {
    const r = await start('dies-mid-run')
    r.mode = 'vanish'
    await eventually(() => app.writ.fleet.find('dies-mid-run')?.online, 3000, 'online')
    // Every writ sent to the node, also the ones nobody answers once its runner is gone.
    const sent: string[] = []
    nc.subscribe(subjects.run('dies-mid-run'), { callback: (_err, msg) => { sent.push(msg.string()) } })
    await nc.flush()
    const res = await run('dies-mid-run', { action: 'testops.sleep', args: { seconds: 1 } })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { status: 'running' })
    await r.kill()
    const id = res.json().id
    // sleep's declared timeout is 2 s, the fixture's lost grace 1 s.
    const lost = await app.inject({ method: 'GET', url: `/v1/runs/${id}?wait=10`, headers: auth(fx.tokens.agent) })
    t.match(lost.json(), { status: 'lost', status_reason: /no result from node dies-mid-run by the deadline/ })
    t.ok(Date.parse(lost.json().finished_at) >= Date.parse(lost.json().deadline_at), 'declared lost once its recorded deadline had passed, not before')
    // A re-dispatch would come from a later sweep.
    await sweepsAfter(lost.json().finished_at, 'sweeps after the run was declared lost')
    t.equal(sent.length, 1, 'the writ went out exactly once')
    t.same(await auditTypes(id), ['run.requested', 'run.dispatched', 'run.lost'])
  })

  t.test('a result that reached the stream in time is not lost, however late the control plane records it', async (t) => {
    const r = await start('slow-to-record')
    t.teardown(() => r.close())
    await eventually(() => app.writ.fleet.find('slow-to-record')?.online, 3000, 'online')
    // Nobody records results for a while (a control plane down, or busy): the result waits in the stream.
    await app.writ.results.stop()
    const res = await run('slow-to-record', { action: 'testops.sleep', args: { seconds: 1 } })
    const id = res.json().id
    await eventually(() => jsm.streams.getMessage('WRIT_RESULTS', { last_by_subj: subjects.result('slow-to-record', id) }).catch(() => null), 10_000, 'the result in the stream')
    // sleep's declared timeout is 2 s, the fixture's lost grace 1 s: wait until sweeps past the deadline the dispatch recorded.
    await sweepsAfter(res.json().deadline_at, 'sweeps past the run deadline')
    t.match((await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.agent) })).json(), { status: 'running' }, 'past the deadline, not declared lost')
    await app.writ.results.start()
    const done = await app.inject({ method: 'GET', url: `/v1/runs/${id}?wait=10`, headers: auth(fx.tokens.agent) })
    t.match(done.json(), { status: 'succeeded', result: { stdout: /testops\.sleep/ } })
    t.same(await auditTypes(id), ['run.requested', 'run.dispatched', 'run.finished'])
  })

  t.test('NATS restarts under a running control plane: runs go on and the chain still verifies', async (t) => {
    const r = await start('survivor')
    t.teardown(() => r.close())
    await eventually(() => app.writ.fleet.find('survivor')?.online, 3000, 'online')
    t.match((await run('survivor', { wait: 5 })).json(), { status: 'succeeded' })
    await nats.kill(true)
    await eventually(async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 503, 5000, 'not ready while NATS is down')
    await nats.restart()
    await eventually(async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, 10_000, 'ready again')
    await eventually(async () => (await run('survivor', { wait: 5 })).json().status === 'succeeded', 15_000, 'a run succeeds after the restart')
    const audit = await app.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
    const verdict = await verifyChain(audit.body.trim().split('\n').map((text) => ({ text })))
    t.ok(verdict.ok, JSON.stringify(verdict))
  })
})
