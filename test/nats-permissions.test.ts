/**
 * Scoped NATS credentials, proven on a real nats-server started with the
 * deployment's permissions (operator mode, JWTs minted from the same source
 * as `writ nats permissions`): a runner's credentials reach nothing of other
 * nodes, of the control plane's inbox (where KV watch deliveries of run
 * records arrive), of `$KV.>` or of the audit subjects — and with them the
 * runner still does all of its own work. The README's nsc commands are that
 * same source.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { AUDITOR_INBOX_PREFIX, PROTOCOL_VERSION, nscCommands, runnerInboxPrefix, streams, subjects } from '@writ/packs/protocol'
import { buildApp } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsWithAccounts } from './helpers/nats-accounts.js'
import { REPO_ROOT } from './helpers/runner-harness.js'

t.test('a runner reaches only its own subjects and inbox, and still does all of its work', async (t) => {
  const accounts = await startNatsWithAccounts()
  t.teardown(() => accounts.stop())
  const url = accounts.nats.url
  const fx = makeCpFixture(url, { nats: { servers: [url], name: 'writ-control-plane', creds_file: accounts.controlPlaneCreds } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const credsA = await accounts.runnerCreds('node-a')
  const credsB = await accounts.runnerCreds('node-b')
  const runnerA = await startRealRunner(fx, url, 'node-a', { natsCreds: credsA })
  t.teardown(() => runnerA.close())
  const runnerB = await startRealRunner(fx, url, 'node-b', { natsCreds: credsB })
  t.teardown(() => runnerB.close())
  await eventually(() => app.writ.fleet.find('node-a')?.online && app.writ.fleet.find('node-b')?.online, 10_000, 'both runners heartbeat under their credentials')

  const cp = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(accounts.controlPlaneCreds)), inboxPrefix: '_INBOX_writ_cp' })
  t.teardown(() => cp.close())

  t.test('its own work: writ request/reply, live output, results into WRIT_RESULTS, cancel, events', async (t) => {
    const chunks: string[] = []
    const out = cp.subscribe('writ.v1.node.node-a.output.*', { callback: (_e, m) => { chunks.push(m.string()) } })
    t.teardown(() => out.unsubscribe())
    const echo = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'node-a', args: { message: 'scoped' }, reason: 'permissions', wait: 10 } })
    t.match(echo.json(), { status: 'succeeded', result: { stdout: 'scoped\n' } }, 'the writ was accepted (reply) and the result stored (JetStream ack on its own inbox)')
    await eventually(() => chunks.length > 0, 5000, 'live output')
    const slow = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.sleep', node: 'node-a', args: { seconds: 1 }, reason: 'cancel me' } })
    await eventually(async () => (await app.writ.store.get(slow.json().id))?.run.status === 'running', 5000, 'the sleep to run')
    const cancel = await app.inject({ method: 'POST', url: `/v1/runs/${slow.json().id}/cancel`, headers: auth(fx.tokens.agent) })
    t.equal(cancel.statusCode, 200)
    const canceled = await app.inject({ method: 'GET', url: `/v1/runs/${slow.json().id}?wait=10`, headers: auth(fx.tokens.agent) })
    t.equal(canceled.json().status, 'canceled', 'the cancel reached the runner and it answered')
    // The multipath watchdog publishes node events with the node's credentials.
    const a = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(credsA)), inboxPrefix: runnerInboxPrefix('node-a') })
    t.teardown(() => a.close())
    const jsm = await jetstreamManager(cp)
    const before = (await jsm.streams.info(streams.events.name)).state.messages
    a.publish(subjects.event('node-a', 'test_event'), JSON.stringify({ v: PROTOCOL_VERSION }))
    await a.flush()
    await eventually(async () => (await jsm.streams.info(streams.events.name)).state.messages > before, 5000, 'the node event stored in WRIT_EVENTS')
  })

  t.test('nothing else: other nodes, the control plane inbox, $KV, the audit, the JetStream API', async (t) => {
    const violations: string[] = []
    const a: NatsConnection = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(credsA)), inboxPrefix: runnerInboxPrefix('node-a') })
    t.teardown(() => a.close())
    void (async () => { for await (const s of a.status()) if (s.type === 'error') violations.push(String((s as { error?: Error }).error?.message ?? '')) })()
    const forbiddenSubs = [
      'writ.v1.node.node-b.run', 'writ.v1.node.node-b.cancel', 'writ.v1.node.*.run', 'writ.v1.node.node-b.output.*',
      '_INBOX_writ_cp.>', '_INBOX.>', '_INBOX_node.node-b.>', '_INBOX_node.>', '_INBOX_node.*.>', '>', '$KV.>', '$KV.WRIT_RUNS.>', 'writ.v1.audit.>',
    ]
    for (const subject of forbiddenSubs) {
      const refused = new Promise<string>((resolve) => { a.subscribe(subject, { callback: (err) => { if (err) resolve(err.message) } }) })
      t.match(await refused, new RegExp(`Permissions Violation for Subscription to "${subject.replace(/[.*>$]/g, (c) => `\\${c}`)}"`), `subscribe ${subject}: refused`)
    }
    const forbiddenPubs = ['writ.v1.node.node-b.heartbeat', 'writ.v1.node.node-b.result.run_12345678', 'writ.v1.audit.event', 'writ.v1.notify.slack', '$KV.WRIT_RUNS.x', '$JS.API.STREAM.INFO.KV_WRIT_RUNS', '$JS.API.DIRECT.GET.KV_WRIT_RUNS', 'writ.v1.node.node-b.run']
    for (const subject of forbiddenPubs) {
      a.publish(subject, '{}')
      await a.flush()
      await eventually(() => violations.some((v) => v.includes(`Publish to "${subject}"`)), 5000, `publish ${subject} refused`)
      t.pass(`publish ${subject}: refused`)
    }
    const ok = a.subscribe(subjects.run('node-a'), { callback: () => {} })
    await a.flush()
    t.notOk(ok.isClosed(), 'its own writ subject is still fine')
  })

  t.test("the control plane's credentials reach the Slack outbox", async (t) => {
    const ack = await jetstream(cp).publish('writ.v1.notify.slack.r-permission-check', '{}', { msgID: 'permission-check' })
    t.equal(ack.stream, 'WRIT_NOTIFY', 'a notice lands in the outbox')
  })

  t.test('a heartbeat that claims another node under its own subject is ignored', async (t) => {
    const a = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(credsA)), inboxPrefix: runnerInboxPrefix('node-a') })
    t.teardown(() => a.close())
    const now = new Date().toISOString()
    a.publish(subjects.heartbeat('node-a'), JSON.stringify({ v: PROTOCOL_VERSION, node_id: 'node-c', node_name: 'node-c', version: 'x', started_at: now, at: now, seq: 0, draining: false, interval_ms: 200, in_flight: 0, packs: [], nomad: { node_pool: 'prod' } }))
    await a.flush()
    const t0 = Date.now()
    await eventually(() => Date.parse(app.writ.fleet.find('node-a')?.last_seen ?? '0') > t0, 5000, 'a later real heartbeat of node-a')
    t.equal(app.writ.fleet.find('node-c'), undefined, 'node-c does not exist for the control plane')
  })
})

t.test('the deployment documents exactly these permissions', async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'terraform', 'README.md'), 'utf8')
  t.ok(readme.includes(nscCommands()), 'terraform/README.md holds the output of `writ nats permissions`')
})

t.test('writ audit runs as a read-only auditor: it verifies and exports, and can change nothing', async (t) => {
  const accounts = await startNatsWithAccounts()
  t.teardown(() => accounts.stop())
  const url = accounts.nats.url
  const fx = makeCpFixture(url, { nats: { servers: [url], name: 'writ-control-plane', creds_file: accounts.controlPlaneCreds } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startRealRunner(fx, url, 'node-a', { natsCreds: await accounts.runnerCreds('node-a') })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('node-a')?.online, 10_000, 'the runner heartbeats')
  const echo = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'node-a', args: { message: 'audited' }, reason: 'auditor', wait: 10 } })
  t.equal(echo.json().status, 'succeeded')

  const cli = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'control-plane', 'dist', 'cli.js'), 'audit', ...args, '--nats', url, '--nats-creds', accounts.auditorCreds], { encoding: 'utf8' })
  const verify = cli(['verify', '--trusted-keys', fx.publicKeyFile])
  t.equal(verify.status, 0, `writ audit verify with the auditor's credentials: ${verify.stderr}`)
  t.match(verify.stdout, /audit chain OK/)
  const exported = cli(['export'])
  t.equal(exported.status, 0, exported.stderr)
  t.ok(exported.stdout.trim().split('\n').some((l) => l.includes('"run.requested"')), 'the export holds the events')

  const auditor = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(accounts.auditorCreds)), inboxPrefix: AUDITOR_INBOX_PREFIX })
  t.teardown(() => auditor.close())
  const jsm = await jetstreamManager(auditor)
  await t.rejects(jsm.streams.deleteMessage('WRIT_AUDIT', 1), 'it cannot delete an audit event')
  await t.rejects(jsm.streams.purge('WRIT_AUDIT'), 'nor purge the stream')
  await t.rejects(jsm.streams.update('WRIT_AUDIT', { max_age: 1_000_000_000 }), 'nor change its retention')
  await t.rejects(jsm.streams.info('KV_WRIT_RUNS'), 'nor look at the run store (it holds sensitive arguments)')
  await t.rejects(jsm.streams.getMessage('WRIT_RESULTS', { seq: 1 }), 'nor read run results')
  const denied: string[] = []
  void (async () => { for await (const s of auditor.status()) if (s.type === 'error') denied.push(String(s.error)) })()
  auditor.publish('writ.v1.audit.event', '{"forged":true}')
  auditor.publish('writ.v1.node.node-a.run', '{"forged":true}')
  await eventually(() => denied.filter((d) => /Permissions Violation for Publish/.test(d)).length >= 2, 5000, 'both publishes refused by the server')
  t.pass('it can neither append to the audit nor send a writ')
})
