import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { subjects } from '@writ/packs/protocol'
import { AUDIT_STREAM, RESULTS_CONSUMER, verifyChain } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'
import { startCpProcess } from './helpers/cp-process.js'

/**
 * A control plane that dispatched a run (the result comes 1.5 s after the
 * writ) and was killed with -9 right after, before the result arrived.
 */
async function killedMidRun(t: { teardown(fn: () => unknown): void }, reason: string) {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const configFile = fx.writeConfigFile()
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 1500 })
  t.teardown(() => runner.close())
  const first = await startCpProcess(configFile)
  t.teardown(() => first.stop())
  const headers = { authorization: `Bearer ${fx.tokens.agent}`, 'content-type': 'application/json' }
  await eventually(async () => {
    const r = await fetch(`${first.url}/v1/nodes`, { headers })
    return ((await r.json()) as { nodes: Array<{ online: boolean }> }).nodes.some((n) => n.online)
  }, 5000, 'node visible')
  const res = await fetch(`${first.url}/v1/runs`, { method: 'POST', headers, body: JSON.stringify({ action: 'testops.sleep', node: 'node-1', args: { seconds: 1 }, reason }) })
  const accepted = { httpStatus: res.status, ...await res.json() as { id: string, status: string, deadline_at?: string } }
  await first.kill9()
  return { nats, fx, configFile, runner, first, headers, accepted }
}

t.test('kill -9 between dispatch and result: after restart the run finishes with its output and the chain verifies', async (t) => {
  const { nats, fx, configFile, runner, first, headers, accepted } = await killedMidRun(t, 'crash test')
  t.equal(accepted.httpStatus, 202)
  t.equal(accepted.status, 'running')
  t.notMatch(first.output(), fx.tokens.agent, 'the token never reached the log')

  // Start again only once the result is in the stream and the run's deadline (2 s timeout + 1 s grace, as the
  // dispatch recorded it) has passed: the result reached the stream in time, so the restarted sweeper must not call it lost.
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const resultInStream = async () => (await jsm.streams.getMessage('WRIT_RESULTS', { last_by_subj: subjects.result('node-1', accepted.id) }).catch(() => null)) ?? false
  const stored = await eventually(resultInStream, 10_000, 'the result in the stream')
  const deadline = Date.parse(accepted.deadline_at ?? '')
  t.ok(stored.time.getTime() <= deadline, 'the result reached the stream before the deadline the dispatch recorded')
  await eventually(() => Date.now() > deadline, 10_000, 'the run deadline to pass')
  const second = await startCpProcess(configFile)
  t.teardown(() => second.stop())
  const done = await fetch(`${second.url}/v1/runs/${accepted.id}?wait=10`, { headers })
  const run = await done.json() as { status: string, result?: { stdout: string } }
  t.equal(run.status, 'succeeded')
  t.match(run.result?.stdout, /testops\.sleep/)
  t.equal(runner.writs.length, 1, 'dispatched once')

  const info = await jsm.streams.info(AUDIT_STREAM)
  const events = []
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq })
    if (m) events.push({ text: m.string(), streamSeq: m.seq })
  }
  const verdict = await verifyChain(events)
  t.ok(verdict.ok, JSON.stringify(verdict))
  const types = events.map((e) => JSON.parse(e.text).type as string)
  t.same(types.filter((x) => x !== 'audit.checkpoint'), ['run.requested', 'run.dispatched', 'run.finished'])
  t.ok(types.indexOf('audit.checkpoint') > types.indexOf('run.dispatched'), 'the restart signed a checkpoint over the tail the crash left uncovered')
})

t.test('a result delivered again after a stop is recorded once, and its audit event says it may repeat one', async (t) => {
  const { nats, configFile, headers, accepted } = await killedMidRun(t, 'redelivery test')

  // The result lands while no control plane runs, and is delivered once and
  // never acknowledged, as when an instance stops between its audit event
  // landing and its record update.
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const consumer = await jetstream(nc).consumers.get('WRIT_RESULTS', RESULTS_CONSUMER)
  const delivered = await eventually(async () => (await consumer.next({ expires: 1000 })) ?? false, 10_000, 'result in the stream')
  const result = delivered.json() as { output_sha256: string }
  delivered.nak()

  const second = await startCpProcess(configFile)
  t.teardown(() => second.stop())
  const run = await (await fetch(`${second.url}/v1/runs/${accepted.id}?wait=10`, { headers })).json() as { status: string }
  t.equal(run.status, 'succeeded')
  const info = await jsm.streams.info(AUDIT_STREAM)
  const events = []
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq })
    if (m) events.push({ text: m.string(), streamSeq: m.seq })
  }
  const types = events.map((e) => JSON.parse(e.text).type as string)
  t.same(types.filter((x) => x !== 'audit.checkpoint'), ['run.requested', 'run.dispatched', 'run.finished'])
  t.match(JSON.parse((events[types.indexOf('run.finished')] as { text: string }).text), { run_id: accepted.id, data: { redelivered: true, output_sha256: result.output_sha256 } }, 'the event says it may repeat one')
  t.ok((await verifyChain(events)).ok, 'the chain verifies')
})
