/**
 * The runner as Nomad runs it — a real process: it connects, heartbeats, and
 * on the signal Nomad stops its task with (the job's kill_signal, else
 * raw_exec's SIGINT) drains (no new writs; the in-flight run finishes and its
 * result is published) before exiting. Results sit in JetStream, so a control plane
 * that was away while a run finished still reads them afterwards.
 */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { loadPacks } from '@writ/packs'
import { WRIT_VERSION, RunResultSchema, WritAckSchema, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects, type Writ } from '@writ/packs/protocol'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { groups, hcl, JOBS_DIR, onlyJob, tasks } from './helpers/hcl-jobs.js'

const CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')

/** The signal `nomad alloc stop` sends the runner task: its kill_signal, or the driver's default. */
async function runnerStopSignal(): Promise<NodeJS.Signals> {
  const task = tasks(groups(onlyJob(await hcl(join(JOBS_DIR, 'writ-node-runner.nomad.hcl'))).job)[0]!.group)[0]!.task
  return (task.kill_signal ?? ({ raw_exec: 'SIGINT', exec: 'SIGINT', docker: 'SIGTERM' } as Record<string, string>)[task.driver]) as NodeJS.Signals
}

t.test('the stop signal Nomad sends drains: the in-flight run finishes and is published, new writs are refused, then the process exits', async (t) => {
  const stopSignal = await runnerStopSignal()
  t.comment(`Nomad stops the runner task with ${stopSignal}`)
  const nats = await startNatsServer()
  const dir = mkdtempSync(join(tmpdir(), 'writ-drain-'))
  t.teardown(async () => { await nats.stop(); rmSync(dir, { recursive: true, force: true }) })
  const kp = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), kp.publicPem)
  // A pack whose action takes a while, so the drain has something to wait for.
  const pack = join(dir, 'packs', 'slow')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(join(pack, 'actions'), { recursive: true })
  writeFileSync(join(pack, 'pack.yaml'), 'schema_version: 1\nid: slow\nname: Slow\nversion: 1.0.0\nactions: [actions/nap.yaml]\n')
  writeFileSync(join(pack, 'actions', 'nap.yaml'), 'schema_version: 1\nid: slow.nap\ntitle: Nap\nkind: exec\nrisk: low\nside_effects: [None.]\nexecution: { command: { binary: sleep, argv: ["1.5"] }, timeout: 10s }\nexamples: [{ title: nap, args: {} }]\n')
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const nodeId = `drain-${randomBytes(3).toString('hex')}`
  const metricsPort = await freePort()
  const child = spawn(process.execPath, [CLI, 'run', '--nats-url', nats.url, '--node-id', nodeId, '--packs', join(dir, 'packs'), '--packs', STOCK_PACKS,
    '--trusted-keys', join(dir, 'trusted.pem'), '--journal', join(dir, 'journal.jsonl'), '--heartbeat-interval-ms', '200', '--metrics-listen', `127.0.0.1:${metricsPort}`],
  // The low-memory profile the Nomad job uses: it must run writs just the same.
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1 --jitless' } })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  await eventually(() => out.includes('listening for writs'), 10_000, `the runner to listen for writs:\n${out}`).catch(() => undefined)
  t.match(out, /listening for writs/, 'the runner connected and listens for writs')
  const http = (path: string) => fetch(`http://127.0.0.1:${metricsPort}${path}`)
  t.equal((await http('/readyz')).status, 200, '/readyz: connected and taking writs')
  t.equal((await http('/healthz')).status, 200)

  const key = loadSigningKey(kp.privatePem)
  const digest = loadPacks([join(dir, 'packs')]).packs[0]!.digest
  const writ = (): Writ => ({
    v: WRIT_VERSION, run_id: `run_${randomBytes(8).toString('hex')}`, node_id: nodeId, node_name: nodeId, action: 'slow.nap', pack: 'slow', pack_digest: digest,
    args: {}, reason: 'drain test', requester: { id: 'tester', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {},
    issued_at: new Date().toISOString(), expires_at: new Date(Date.now() + 60_000).toISOString(), nonce: newNonce(),
    binding_salt: newBindingSalt(),
  })
  const enc = new TextEncoder(); const dec = new TextDecoder()
  const first = writ()
  const results = nc.subscribe(subjects.result(nodeId, first.run_id), { max: 1 })
  const ack1 = WritAckSchema.parse(JSON.parse(dec.decode((await nc.request(subjects.run(nodeId), enc.encode(JSON.stringify(signWrit(first, key))), { timeout: 5000 })).data)))
  t.ok(ack1.accepted, 'a run is in flight')
  child.kill(stopSignal)
  // The 1.5 s nap is still running, so the runner is still up (a fetch that fails means it exited without draining).
  await eventually(async () => (await http('/readyz')).status === 503, 5000, '/readyz to turn 503 while draining')
  t.pass('/readyz turns 503 while draining, so Nomad stops routing to it')
  t.match(await (await http('/metrics')).text(), /writ_runner_in_flight 1\n/, '/metrics shows the run still in flight')
  const ack2 = WritAckSchema.parse(JSON.parse(dec.decode((await nc.request(subjects.run(nodeId), enc.encode(JSON.stringify(signWrit(writ(), key))), { timeout: 5000 })).data)))
  t.equal(ack2.accepted, false, 'a writ that arrives while draining is refused')
  if (!ack2.accepted) t.equal(ack2.refusal.code, 'draining')
  for await (const m of results) {
    const r = RunResultSchema.parse(JSON.parse(dec.decode(m.data)))
    t.equal(r.status, 'succeeded', 'the in-flight run finished normally')
  }
  t.equal(await exited, 0, 'then the runner exited cleanly')
  t.match(out, /draining/)

  // The result is in the stream: a consumer that arrives later (a restarted control plane) still reads it.
  const jsm = await jetstreamManager(nc)
  const stored = await jsm.streams.getMessage(streams.results.name, { last_by_subj: subjects.result(nodeId, first.run_id) })
  t.ok(stored, 'the result is durable in WRIT_RESULTS')
  t.equal(stored && RunResultSchema.parse(stored.json()).run_id, first.run_id)
})

t.test('a runner killed mid-run reports the run as of unknown outcome when it starts again, and never re-runs it', async (t) => {
  const nats = await startNatsServer()
  const dir = mkdtempSync(join(tmpdir(), 'writ-kill-'))
  t.teardown(async () => { await nats.stop(); rmSync(dir, { recursive: true, force: true }) })
  const kp = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), kp.publicPem)
  const { mkdirSync, existsSync } = await import('node:fs')
  const pack = join(dir, 'packs', 'slow')
  mkdirSync(join(pack, 'actions'), { recursive: true })
  const marker = join(dir, 'ran')
  writeFileSync(join(pack, 'pack.yaml'), 'schema_version: 1\nid: slow\nname: Slow\nversion: 1.0.0\nactions: [actions/nap.yaml]\n')
  writeFileSync(join(pack, 'actions', 'nap.yaml'), `schema_version: 1\nid: slow.nap\ntitle: Nap then mark\nkind: exec\nrisk: low\nside_effects: [Creates a marker file after 3 s.]\nexecution: { command: { binary: timeout, argv: ["10", "sh", "-c", "sleep 3; touch ${marker}"] }, timeout: 10s }\nexamples: [{ title: nap, args: {} }]\n`)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const nodeId = `kill-${randomBytes(3).toString('hex')}`
  const args = [CLI, 'run', '--nats-url', nats.url, '--node-id', nodeId, '--packs', join(dir, 'packs'), '--trusted-keys', join(dir, 'trusted.pem'), '--journal', join(dir, 'journal.jsonl'), '--allow-shell-packs']
  const start = async () => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    await eventually(() => out.includes('listening for writs'), 10_000, 'the runner to listen for writs')
    return child
  }
  const first = await start()
  const key = loadSigningKey(kp.privatePem)
  const writ: Writ = {
    v: WRIT_VERSION, run_id: `run_${randomBytes(8).toString('hex')}`, node_id: nodeId, node_name: nodeId, action: 'slow.nap', pack: 'slow',
    pack_digest: loadPacks([join(dir, 'packs')]).packs[0]!.digest, args: {}, reason: 'kill test', requester: { id: 'tester', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {},
    issued_at: new Date().toISOString(), expires_at: new Date(Date.now() + 60_000).toISOString(), nonce: newNonce(),
    binding_salt: newBindingSalt(),
  }
  const enc = new TextEncoder(); const dec = new TextDecoder()
  const signed = signWrit(writ, key)
  const ack = WritAckSchema.parse(JSON.parse(dec.decode((await nc.request(subjects.run(nodeId), enc.encode(JSON.stringify(signed)), { timeout: 5000 })).data)))
  t.ok(ack.accepted)
  // The processes of the action (timeout, sh), found by the marker path on their command line.
  const actionPids = (): number[] => {
    try { return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').map(Number) } catch { return [] }
  }
  const [leader] = await eventually(() => { const pids = actionPids(); return pids.length > 0 && pids }, 5000, 'the action to be running')
  // kill -9 the runner and its process group, as an OOM kill or a host crash would.
  process.kill(first.pid!, 'SIGKILL')
  await new Promise((r) => first.once('exit', r))
  try { process.kill(-Number(leader), 'SIGKILL') } catch { /* the action died with it */ }
  await eventually(() => actionPids().length === 0, 5000, 'the killed action to be gone')
  const results = nc.subscribe(subjects.result(nodeId, writ.run_id), { max: 1 })
  const second = await start()
  t.teardown(() => { second.kill('SIGTERM') })
  for await (const m of results) {
    const r = RunResultSchema.parse(JSON.parse(dec.decode(m.data)))
    t.equal(r.status, 'failed', 'reported, not left to be declared lost')
    t.match(r.error, /unknown/, `with the reason: ${r.error}`)
  }
  const again = WritAckSchema.parse(JSON.parse(dec.decode((await nc.request(subjects.run(nodeId), enc.encode(JSON.stringify(signed)), { timeout: 5000 })).data)))
  t.equal(again.accepted, false, 'the redelivered writ is a replay')
  // A second run would be visible now: its processes napping (the runner spawns right after acking), or its marker.
  t.same(actionPids(), [], 'the action is not running a second time')
  t.notOk(existsSync(marker), 'and it never completed')
})
