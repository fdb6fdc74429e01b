/**
 * What the alert rules read from a control plane's /metrics, as it changes:
 * each runner's last heartbeat (and a node Nomad has removed dropping out),
 * readiness and audit coverage following NATS, coverage refusing a chain
 * whose newest event is junk, and JetStream usage against the streams' and
 * the account's limits from one look that serves scrapes for a while.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { AUDIT_STREAM, AUDIT_SUBJECT, buildApp, createLogger, parseConfig } from '@writ/control-plane'
import { streams, subjects } from '@writ/packs/protocol'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { startNomadDouble } from './doubles/nomad-api.js'

/** The one node of ../shared/fixtures/nomad/GET_nodes.json. */
const NOMAD_SAMPLE_NODE = 'f7476465-4d6e-c0de-26d0-e383c49be941'

type App = Awaited<ReturnType<typeof buildApp>>

/** The value of the sample of `name` whose labels include `labels`; undefined when there is none. */
async function sample(app: App, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}

t.test('each runner\'s last heartbeat as this instance heard it; a node Nomad no longer lists drops out once offline', async (t) => {
  const nomad = await startNomadDouble()
  t.teardown(() => nomad.close())
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { nomad: { addr: nomad.addr, refresh_interval: '200ms', max_stale: '30s', timeout: '2s' } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const started = Date.now() / 1000
  const opts = { natsUrl: nats.url, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile }
  // Nomad lists nomad-4; it has never heard of gone-1 (purged, or never a client).
  const listed = await startFakeRunner({ ...opts, nodeId: NOMAD_SAMPLE_NODE, nodeName: 'nomad-4' })
  const gone = await startFakeRunner({ ...opts, nodeId: 'gone-1' })
  const listedTs = { node: NOMAD_SAMPLE_NODE, node_name: 'nomad-4' }
  const goneTs = { node: 'gone-1', node_name: 'gone-1' }

  const first = await eventually(async () => {
    const a = await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', listedTs)
    const b = await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', goneTs)
    return a !== undefined && b !== undefined ? { a, b } : undefined
  }, 10_000, 'a heartbeat timestamp for both nodes')
  t.ok(first.a >= started && first.a <= Date.now() / 1000, 'a Unix time in seconds, from this test')
  await eventually(async () => ((await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', listedTs)) ?? 0) > first.a, 10_000, 'the timestamp to follow the heartbeats')
  t.pass('it moves with every heartbeat; a node Nomad does not list is there while it heartbeats')

  await listed.close()
  await gone.close()
  await eventually(() => app.writ.fleet.find('nomad-4')?.online === false && app.writ.fleet.find('gone-1')?.online === false, 10_000, 'both offline')
  await eventually(async () => (await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', goneTs)) === undefined, 10_000, 'gone-1 to drop out')
  t.pass('offline and unknown to a fresh Nomad node list: no series, so no alert that never ends')
  const last = await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', listedTs)
  t.ok(last !== undefined && last < Date.now() / 1000, 'nomad-4 stays with its last heartbeat, which only ages: the alert fires for it')
  t.equal(await sample(app, 'writ_node_last_heartbeat_timestamp_seconds', listedTs), last, 'and does not move')
})

t.test('ready and audit coverage follow NATS: 0 and stopped while it is down, back when it returns', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '200ms' } })
  t.teardown(() => fx.cleanup())
  let logs = ''
  const sink = new Writable({ write(chunk, _enc, done) { logs += chunk.toString(); done() } })
  const config = parseConfig({ ...fx.config, log: { level: 'warn' } })
  const app = await buildApp(config, { logger: createLogger(config, sink) })
  t.teardown(() => app.close())

  t.equal(await sample(app, 'writ_control_plane_ready'), 1, 'ready while connected')
  const c0 = await sample(app, 'writ_audit_covered_timestamp_seconds') ?? 0
  await eventually(async () => ((await sample(app, 'writ_audit_covered_timestamp_seconds')) ?? 0) > c0, 10_000, 'coverage to advance')
  t.pass('an idle chain that ends in a checkpoint counts as covered at every look')

  await nats.kill()
  await eventually(async () => (await sample(app, 'writ_control_plane_ready')) === 0, 10_000, 'ready 0')
  t.pass('not ready without NATS, as /readyz says')
  const failures = (): number => logs.split('\n').filter((l) => l.includes('audit checkpoint failed')).length
  await eventually(() => failures() >= 1, 30_000, 'a failed look at the chain')
  const stuck = await sample(app, 'writ_audit_covered_timestamp_seconds')
  await eventually(() => failures() >= 2, 30_000, 'another failed look')
  t.equal(await sample(app, 'writ_audit_covered_timestamp_seconds'), stuck, 'a look that fails does not count as covered')

  await nats.restart()
  await eventually(async () => (await sample(app, 'writ_control_plane_ready')) === 1, 30_000, 'ready again')
  await eventually(async () => ((await sample(app, 'writ_audit_covered_timestamp_seconds')) ?? 0) > (stuck ?? 0), 30_000, 'coverage to advance again')
  t.pass('covered again once NATS is back')
})

t.test('a chain whose newest event is not an event is not covered, whoever wrote it', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '200ms' } })
  t.teardown(() => fx.cleanup())
  let logs = ''
  const sink = new Writable({ write(chunk, _enc, done) { logs += chunk.toString(); done() } })
  const config = parseConfig({ ...fx.config, log: { level: 'warn' } })
  const app = await buildApp(config, { logger: createLogger(config, sink) })
  t.teardown(() => app.close())
  const c0 = await sample(app, 'writ_audit_covered_timestamp_seconds') ?? 0
  await eventually(async () => ((await sample(app, 'writ_audit_covered_timestamp_seconds')) ?? 0) > c0, 10_000, 'coverage to advance')

  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const junkAt = Date.now() / 1000
  await nc.request(AUDIT_SUBJECT, 'not an audit event', { timeout: 5000 })
  await eventually(() => logs.includes('the newest audit event does not parse'), 10_000, 'the control plane to notice')
  const after = await sample(app, 'writ_audit_covered_timestamp_seconds') ?? Infinity
  t.ok(after <= junkAt, `coverage stays before the junk (${after} <= ${junkAt}), so WritAuditCheckpointStale fires`)
  t.equal(logs.split('\n').filter((l) => l.includes('the newest audit event does not parse')).length, 1, 'said once, not at every look')
})

t.test('JetStream usage: streams against their own limits, the account against its storage; one look serves scrapes', async (t) => {
  const nats = await startNatsServer({
    extraConfig: 'accounts { WRIT { jetstream { max_file: 1073741824, max_mem: 67108864 }, users: [{ user: writ, password: writ-test-pass }] } }',
  })
  t.teardown(() => nats.stop())
  const nc = await connect({ servers: nats.url, user: 'writ', pass: 'writ-test-pass' })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  // An operator gave the audit stream a size limit before this control plane started; writ keeps it.
  await jsm.streams.add({ name: AUDIT_STREAM, subjects: [AUDIT_SUBJECT], max_bytes: 64 * 1024 * 1024 })
  // One read serves every scrape of this test, however slow the machine.
  const fx = makeCpFixture(nats.url, { nats: { servers: [nats.url], user: 'writ', pass: 'writ-test-pass' }, jetstream: { replicas: 1, results_max_age: '168h', usage_interval: '1h' } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())

  // Three node events stored before anyone scrapes.
  for (let i = 0; i < 3; i++) await nc.request(subjects.event('host-1', 'probe'), '{}', { timeout: 5000 })

  const audit = { stream: AUDIT_STREAM }
  const events = { stream: streams.events.name }
  t.equal(await sample(app, 'writ_jetstream_stream_max_bytes', audit), 64 * 1024 * 1024, 'WRIT_AUDIT with its own max_bytes')
  t.equal(await sample(app, 'writ_jetstream_stream_max_messages', audit), -1, 'and no message limit (-1)')
  t.equal(await sample(app, 'writ_jetstream_stream_max_bytes', { stream: 'KV_WRIT_RUNS' }), -1, 'the run store without a limit of its own')
  const stored = (await jsm.streams.info(streams.events.name)).state
  t.equal(await sample(app, 'writ_jetstream_stream_messages', events), 3, 'messages as the stream holds them')
  t.equal(await sample(app, 'writ_jetstream_stream_bytes', events), stored.bytes, 'bytes as the stream reports them')
  const account = await jsm.getAccountInfo()
  t.equal(await sample(app, 'writ_jetstream_account_max_storage_bytes', { tier: 'all' }), 1073741824, 'the account\'s file storage limit')
  t.equal(await sample(app, 'writ_jetstream_account_storage_bytes', { tier: 'all' }), account.storage, 'and what it uses')
  t.ok(account.storage > 0)

  for (let i = 0; i < 5; i++) await nc.request(subjects.event('host-1', 'probe'), '{}', { timeout: 5000 })
  t.equal((await jsm.streams.info(streams.events.name)).state.messages, 8, 'five more events are stored')
  t.equal(await sample(app, 'writ_jetstream_stream_messages', events), 3, 'the next scrape gets the same read: scrapes do not each ask JetStream')
})
