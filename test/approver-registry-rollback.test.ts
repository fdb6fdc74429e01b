/**
 * An approver registry rolled back on disk never brings a revoked passkey
 * back, not even across a restart. The administrator publishes R1 (ops-1 and
 * ops-9) and then R2 (ops-9 revoked) with `writ approvers export`; someone
 * writes R1 back over R2; the runner — a real process, restarted — keeps R2
 * (its journal remembers the newest registry it accepted), refuses a stop
 * approved with ops-9's passkey, and the Nomad double never sees it. A
 * registry past its expires_at is refused at start, on reload, and once the
 * one in force runs out.
 */
import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { loadPacks } from '@writ/packs'
import {
  HeartbeatSchema, PROTOCOL_VERSION, RunResultSchema, WRIT_VERSION, WritAckSchema, approvalBinding, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects,
  type ApprovalRef, type Heartbeat, type RunResult, type Writ, type WritAck,
} from '@writ/packs/protocol'
import { bindingChallenge, signApproverRegistry } from '@writ/packs/approvers'
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { registrationsFile, registryOf, testApprover, type TestApprover } from './helpers/approver-registry.js'
import { eventually } from './helpers/cp-fake-runner.js'

const pexec = promisify(execFile)
const RUNNER_CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const WRIT_CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
const ALLOC = '3c9e2f61-8a4b-4d7e-9f10-2b3c4d5e6f70'
/** The runner's Nomad node id: the allocation runs here, so the runner's locality check lets a stop through. */
const NODE = '9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d'

const dir = mkdtempSync(join(tmpdir(), 'writ-rollback-'))
const dispatch = generateSigningKeyPair()
const dispatchKey = loadSigningKey(dispatch.privatePem)
writeFileSync(join(dir, 'trusted.pem'), dispatch.publicPem)
const approvers = generateSigningKeyPair()
const approversKey = loadSigningKey(approvers.privatePem)
writeFileSync(join(dir, 'approvers.pem'), approvers.privatePem, { mode: 0o600 })
writeFileSync(join(dir, 'approvers.pub.pem'), approvers.publicPem)
writeFileSync(join(dir, 'policy.yaml'), 'require:\n  default: { groups: [oncall], quorum: 1 }\n')
const registryFile = join(dir, 'approvers.json')
const journal = join(dir, 'journal.jsonl')

const ops1 = testApprover('ops-1', ['oncall'])
const ops9 = testApprover('ops-9', ['oncall'])

let nats: NatsServerHandle
let nomad: NomadDouble
let nc: NatsConnection
const heartbeats: Heartbeat[] = []
t.before(async () => {
  nats = await startNatsServer()
  nomad = await startNomadDouble({ extraAllocs: [allocationLike({ id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage' })] })
  nc = await connect({ servers: nats.url })
  await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  nc.subscribe(subjects.heartbeat(NODE), { callback: (_e, m) => { heartbeats.push(HeartbeatSchema.parse(m.json())) } })
})
t.teardown(async () => {
  await nc?.close()
  await nomad?.close()
  await nats?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** `writ approvers export` offline (from a saved registrations file), as an administrator publishes. */
async function exportRegistry(people: TestApprover[], policy = join(dir, 'policy.yaml')): Promise<string> {
  const regs = join(dir, 'registrations.json')
  registrationsFile(regs, people, dispatchKey.keyId)
  const { stdout } = await pexec(process.execPath, [WRIT_CLI, 'approvers', 'export', '--key', join(dir, 'approvers.pem'), '--policy', policy, '--out', registryFile, '--from', regs])
  return stdout
}

/** Writes a file over the registry in one rename, as a Nomad template (or an attacker with the file) would. */
function writeBack(text: string): void {
  writeFileSync(`${registryFile}.tmp`, text)
  renameSync(`${registryFile}.tmp`, registryFile)
}

interface RunnerProcess { child: ChildProcess, output(): string, exited: Promise<number | null>, stop(): Promise<number | null> }

function spawnRunner(journalFile = journal): RunnerProcess {
  const child = spawn(process.execPath, [RUNNER_CLI, 'run', '--nats-url', nats.url, '--node-id', NODE, '--node-name', 'client-9', '--packs', STOCK_PACKS,
    '--trusted-keys', join(dir, 'trusted.pem'), '--journal', journalFile, '--nomad-addr', nomad.addr, '--heartbeat-interval-ms', '200',
    '--approvers-registry', registryFile, '--approvers-key', join(dir, 'approvers.pub.pem'), '--approvers-reload-ms', '100'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, output: () => out, exited, stop: async () => { if (child.exitCode === null) child.kill('SIGTERM'); return exited } }
}

const digest = loadPacks([STOCK_PACKS]).packs.find((p) => p.id === 'nomad')!.digest
function stopWrit(): Writ {
  return {
    v: WRIT_VERSION, run_id: `run_${newNonce().slice(0, 16)}`, node_id: NODE, node_name: 'client-9', action: 'nomad.alloc_stop', pack: 'nomad', pack_digest: digest,
    args: { alloc_id: ALLOC }, reason: 'victoria-metrics writes into a reformatted volume', requester: { id: 'agent-sre', kind: 'agent' }, approvals: [],
    request_hash: 'e'.repeat(64), options: {}, issued_at: new Date().toISOString(), expires_at: new Date(Date.now() + 60_000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt(),
  }
}
function approvedBy(writ: Writ, who: TestApprover): Writ {
  const binding = approvalBinding(writ)
  const approval: ApprovalRef = { by: who.operator, at: new Date().toISOString(), binding, passkey: who.passkey.assert(bindingChallenge(binding)) }
  return { ...writ, approvals: [approval] }
}
/** Sends a writ and waits for its result (a refusal is one too): only then is it known whether anything reached Nomad. */
async function sendAndSettle(writ: Writ): Promise<{ ack: WritAck, result: RunResult }> {
  const results = nc.subscribe(subjects.result(NODE, writ.run_id), { max: 1, timeout: 30_000 })
  const ack = await send(writ)
  for await (const m of results) return { ack, result: RunResultSchema.parse(m.json()) }
  throw new Error(`no result for ${writ.run_id}`)
}

/** Sends a signed writ, waiting for the runner's subscription after a (re)start. */
async function send(writ: Writ): Promise<WritAck> {
  const data = new TextEncoder().encode(JSON.stringify(signWrit(writ, dispatchKey)))
  return eventually(async () => {
    try { return WritAckSchema.parse((await nc.request(subjects.run(NODE), data, { timeout: 5000 })).json()) } catch { return undefined }
  }, 20_000, 'the runner to answer the writ')
}
const stops = (): number => nomad.requests.filter((r) => r.method === 'POST' && r.path === `/v1/allocation/${ALLOC}/stop`).length
const count = (text: string, needle: string): number => text.split(needle).length - 1

t.test('R1 → R2 (ops-9 revoked) → R1 written back → runner restarted: ops-9\'s approval is refused and never reaches Nomad', async (t) => {
  const transcript: string[] = []
  transcript.push((await exportRegistry([ops1, ops9])).trim())
  const r1 = readFileSync(registryFile, 'utf8')
  let runner = spawnRunner()
  t.teardown(() => runner.stop())

  const before = await send(approvedBy(stopWrit(), ops9))
  t.ok(before.accepted, 'under R1, ops-9\'s passkey approves a stop')
  await eventually(() => stops() === 1, 10_000, 'the stop to reach Nomad')

  const reloads = count(runner.output(), 'approver registry reloaded')
  transcript.push((await exportRegistry([ops1])).trim())
  await eventually(() => count(runner.output(), 'approver registry reloaded') > reloads, 10_000, 'the runner to load R2')
  const revoked = await send(approvedBy(stopWrit(), ops9))
  t.equal(revoked.accepted, false, 'under R2, ops-9\'s passkey is refused')
  if (!revoked.accepted) t.equal(revoked.refusal.code, 'unknown_approver')

  const refusedReplacements = count(runner.output(), 'approver registry replacement refused')
  writeBack(r1)
  await eventually(() => count(runner.output(), 'approver registry replacement refused') > refusedReplacements, 10_000, 'the runner to refuse R1 written back')
  const whileRunning = await send(approvedBy(stopWrit(), ops9))
  t.equal(whileRunning.accepted, false, 'R1 written back is refused while the runner runs')

  t.equal(await runner.stop(), 0, 'the runner stops cleanly')
  t.equal(readFileSync(registryFile, 'utf8'), r1, 'R1 is the file on disk when the runner starts again')
  const heardBefore = heartbeats.length
  runner = spawnRunner()
  const { ack: afterRestart, result } = await sendAndSettle(approvedBy(stopWrit(), ops9))
  t.equal(afterRestart.accepted, false, 'after the restart, a stop approved with ops-9\'s revoked passkey is refused')
  t.equal(result.status, 'refused', 'its result says refused')
  if (!afterRestart.accepted) {
    t.equal(afterRestart.refusal.code, 'unknown_approver')
    transcript.push(`runner after the restart, writ approved by ops-9: ${afterRestart.refusal.code} — ${afterRestart.refusal.message}`)
  }
  t.equal(stops(), 1, 'the Nomad double never saw a stop approved by ops-9 after the revocation')

  const startLine = runner.output().split('\n').find((l) => l.includes('refused at start'))
  t.ok(startLine, 'the runner logged why it refused the file at start')
  const logged = JSON.parse(startLine ?? '{}') as { msg?: string }
  t.match(logged.msg, /serial 1 .* older than serial 2 .*; serial 2 .* accepted before, stays in force/)
  transcript.push(`runner log at start: ${logged.msg}`)
  const hb = await eventually(() => heartbeats.slice(heardBefore).find((h) => !h.draining)?.approver_registry, 5000, 'a heartbeat of the restarted runner naming its registry')
  t.equal(hb.serial, 2, 'its heartbeat reports serial 2, the registry it holds')

  const ok = await send(approvedBy(stopWrit(), ops1))
  t.ok(ok.accepted, 'ops-1, still in R2, approves a stop as before')
  await eventually(() => stops() === 2, 10_000, 'ops-1\'s stop to reach Nomad')
  t.comment(`rollback transcript:\n${transcript.join('\n')}`)
  await runner.stop()
})

t.test('a registry past its expires_at is refused at start, on reload, and stops vouching once the one in force runs out', async (t) => {
  const expired = signApproverRegistry({ ...registryOf([ops1], { default: { groups: ['oncall'], quorum: 1 }, rules: [] }, new Date(Date.now() - 7200_000)), serial: 40, expires_at: new Date(Date.now() - 3600_000).toISOString() }, approversKey)
  const expiredText = `${JSON.stringify(expired)}\n`

  // At start, with nothing accepted before: the daemon says why and exits 2.
  writeBack(expiredText)
  const fresh = spawnRunner(join(dir, 'fresh-journal.jsonl'))
  t.equal(await fresh.exited, 2, 'a fresh runner does not start on an expired registry')
  t.match(fresh.output(), /writ-node-runner: approver registry .*approvers\.json refused: it expired at .*; an administrator has to publish a new one/)
  t.comment(`fresh runner: ${fresh.output().trim().split('\n').at(-1)}`)

  // On reload: the registry in force stays.
  await exportRegistry([ops1])
  const runner = spawnRunner()
  t.teardown(() => runner.stop())
  const serial = JSON.parse(readFileSync(registryFile, 'utf8')).registry.serial as number
  await eventually(() => heartbeats.at(-1)?.approver_registry?.serial === serial, 10_000, 'the runner to hold the exported registry')
  const refused = count(runner.output(), 'approver registry replacement refused')
  const later = signApproverRegistry({ ...registryOf([ops1, ops9], { default: { groups: ['oncall'], quorum: 1 }, rules: [] }, new Date(Date.now() - 2000)), serial: serial + 1, expires_at: new Date(Date.now() - 1000).toISOString() }, approversKey)
  writeBack(JSON.stringify(later))
  await eventually(() => count(runner.output(), 'approver registry replacement refused') > refused, 10_000, 'the runner to refuse the expired replacement')
  t.match(runner.output(), /approver registry replacement refused, serial \d+ .* stays in force: it expired at/)
  t.equal(heartbeats.at(-1)?.approver_registry?.serial, serial, 'the registry in force stays')

  // In force, then past its expiry: passkey approvals are refused with the reason.
  writeFileSync(join(dir, 'short-policy.yaml'), 'require:\n  default: { groups: [oncall] }\nvalid_for: 3s\n')
  await exportRegistry([ops1], join(dir, 'short-policy.yaml'))
  const short = JSON.parse(readFileSync(registryFile, 'utf8')).registry as { serial: number, expires_at: string }
  await eventually(() => heartbeats.at(-1)?.approver_registry?.serial === short.serial, 10_000, 'the runner to hold the short-lived registry')
  t.equal(heartbeats.at(-1)?.approver_registry?.expires_at, short.expires_at, 'the heartbeat names its expiry')
  await eventually(() => Date.now() > Date.parse(short.expires_at), 10_000, 'the registry to pass its expires_at')
  const before = stops()
  const ack = await send(approvedBy(stopWrit(), ops1))
  t.equal(ack.accepted, false, 'a registry past its expiry vouches for nobody')
  if (!ack.accepted) {
    t.equal(ack.refusal.code, 'registry_expired')
    t.match(ack.refusal.message, /expired at .*publish a new one/)
  }
  t.equal(stops(), before, 'nothing reached Nomad')
  await runner.stop()
})
