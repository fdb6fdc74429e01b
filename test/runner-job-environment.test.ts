/**
 * The runner works under exactly the environment its job gives it.
 *
 * jobs/writ-node-runner.nomad.hcl is read with HashiCorp's HCL parser and
 * rendered the way Nomad would start the task on a node (test/lab/host-agent-job.ts:
 * the env block, the env templates, the files templates write, the argv, the
 * workload identity in NOMAD_TOKEN, NODE_OPTIONS as the job sets it). The
 * runner process is started with that argv, in that task folder, with that
 * environment and nothing else, against an operator-mode nats-server and
 * the Nomad and Docker doubles where the job points it: the Task API socket
 * in the task's secrets dir and the host's Docker socket. One action of
 * every executor kind goes through it (exec, list, Docker's socket, Nomad's
 * Task API socket, Nomad over https), and the runner must still be alive
 * afterwards. A change to the job's environment that breaks any kind fails
 * here, in `npm test`, before it reaches a node.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { loadPacks } from '@writ/packs'
import {
  CONTROL_PLANE_INBOX_PREFIX, WRIT_VERSION, RunResultSchema, WritAckSchema, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce,
  signWrit, streams, subjects, type RunResult, type Writ, type WritAck,
} from '@writ/packs/protocol'
import { REPO_ROOT } from './doubles/fixtures-dir.js'
import { allocationLike, startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { startDockerDouble, type DockerDouble } from './doubles/docker-api.js'
import { startNatsWithAccounts, type NatsWithAccounts } from './helpers/nats-accounts.js'
import { freePort } from './helpers/nats-server.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { createTestPki } from './helpers/test-pki.js'
import { hostAgentFromJob, type HostAgent, type LabNomadValues } from './lab/host-agent-job.js'

const JOB = join(REPO_ROOT, 'jobs', 'writ-node-runner.nomad.hcl')
const STOCK = join(REPO_ROOT, 'packs', 'stock')
const RUNNER_CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const WORKLOAD_IDENTITY = 'b1946ac9-2f6b-4b6e-8f1a-0c3d5e7f9a1b'
const NODE_ID = '1ac61e33-a465-2ace-f63f-cffa1285e7eb'
const LOCAL_ALLOC = '5d2e8f10-7b3c-4e6a-9f21-3c4d5e6f7a8b'
const CSI_PLUGIN = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00'

const keys = generateSigningKeyPair()
const key = loadSigningKey(keys.privatePem)
const stockPacks = loadPacks([STOCK]).packs
const digestOf = (packId: string): string => {
  const p = stockPacks.find((x) => x.id === packId)
  if (!p) throw new Error(`no stock pack ${packId}`)
  return p.digest
}

interface Deployed {
  agent: HostAgent
  dataDir: string
  nomad: NomadDouble
  runner: ChildProcess
  output: () => string
  metricsPort: number
}

let accounts: NatsWithAccounts
let cp: NatsConnection
let jsm: JetStreamManager
let docker: DockerDouble

t.before(async () => {
  accounts = await startNatsWithAccounts()
  cp = await connect({ servers: accounts.nats.url, authenticator: credsAuthenticator(readFileSync(accounts.controlPlaneCreds)), inboxPrefix: CONTROL_PLANE_INBOX_PREFIX })
  jsm = await jetstreamManager(cp)
  await jsm.streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  docker = await startDockerDouble({
    extraContainers: [{
      Id: CSI_PLUGIN, Names: ['/plugin-democratic-csi-node'], Image: 'democraticcsi/democratic-csi', State: 'running',
      logFrames: [{ stream: 2, payload: Buffer.from('blkid output empty for /dev/dm-5 (exit code 2)\n') }],
    }],
  })
})
t.teardown(async () => {
  await docker.close()
  await cp.close()
  await accounts.stop()
})

/**
 * Lays the task out as Nomad would on this node, starts the doubles where the
 * job's environment points, and starts the runner: the job's argv, in its
 * task folder, with its environment only (`extraEnv` for what a cluster's
 * agent adds, e.g. an https address).
 */
async function deploy(t: Test, extraEnv: (agent: HostAgent) => Record<string, string> = () => ({}), nomadTls?: { key: string, cert: string }): Promise<Deployed> {
  const dataDir = mkdtempSync(join(tmpdir(), 'writ-job-env-'))
  const metricsPort = await freePort()
  const values: LabNomadValues = {
    nodeId: NODE_ID, nodeName: 'client-1', nodeIp: '127.0.0.1', datacenter: 'dc1',
    vars: {
      release_base_url: 'https://releases.test.invalid/writ', writ_version: '0.1.0', runner_sha256: 'a'.repeat(64), packs_sha256: 'b'.repeat(64),
      nomad_data_dir: dataDir, nats_creds_host_path: await accounts.runnerCreds(NODE_ID), journal_path: join(dataDir, 'journal', 'runner-journal.jsonl'),
      docker_socket: docker.socketPath, metrics_port: String(metricsPort),
    },
    services: { 'writ-nats': { address: '127.0.0.1', port: accounts.nats.port } },
    variables: { 'nomad/jobs/writ-node-runner': { trusted_keys_pem: keys.publicPem } },
    workloadIdentityToken: WORKLOAD_IDENTITY,
  }
  const agent = await hostAgentFromJob(JOB, values)
  t.equal(agent.driver, 'raw_exec', 'the runner is a raw_exec host agent')
  for (const f of agent.files) {
    mkdirSync(dirname(f.path), { recursive: true })
    if (f.kind === 'template') writeFileSync(f.path, f.content ?? '', { mode: 0o600 })
    else if (f.unpack) cpSync(STOCK, f.path, { recursive: true }) // the packs tarball: one folder per pack at the top
    else {
      // The runner's release executable; here a launcher for the built CLI, so the job's NODE_OPTIONS reach the same code.
      writeFileSync(f.path, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(RUNNER_CLI)} "$@"\n`)
      chmodSync(f.path, 0o755)
    }
  }
  const secrets = agent.env.NOMAD_SECRETS_DIR as string
  mkdirSync(secrets, { recursive: true })
  mkdirSync(dirname(values.vars.journal_path as string), { recursive: true })
  const nomadAddr = agent.env.NOMAD_ADDR as string
  const local = allocationLike({ id: LOCAL_ALLOC, nodeId: NODE_ID, jobId: 'victoria-metrics', taskGroup: 'storage' })
  const nomad = nomadTls
    ? await startNomadDouble({ token: WORKLOAD_IDENTITY, tls: nomadTls, extraAllocs: [local] })
    : await startNomadDouble({ token: WORKLOAD_IDENTITY, socketPath: nomadAddr.replace(/^unix:\/\//, ''), extraAllocs: [local] })
  const env = { ...agent.env, ...extraEnv(agent) }
  if (nomadTls) env.NOMAD_ADDR = nomad.addr
  const [command, ...args] = agent.argv
  const runner = spawn(command as string, args, { cwd: agent.taskDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  runner.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  runner.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const deployed: Deployed = { agent, dataDir, nomad, runner, output: () => out, metricsPort }
  // Each test's runner stops with its test: two runners for one node id would both take its writs.
  t.teardown(async () => {
    if (runner.exitCode === null && runner.signalCode === null) {
      const gone = new Promise((r) => runner.once('exit', r))
      runner.kill('SIGTERM')
      await gone
    }
    await nomad.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  await eventually(() => out.includes('listening for writs') || runner.exitCode !== null, 15_000, 'the runner to listen for writs')
  t.equal(runner.exitCode, null, `the runner started under the job's environment (NODE_OPTIONS=${env.NODE_OPTIONS ?? ''})`, { output: runner.exitCode === null ? '' : out })
  return deployed
}

/** Signs and sends a writ as the control plane would, and reads its result from JetStream. */
async function run(action: string, args: Record<string, unknown>): Promise<{ ack: WritAck, result: RunResult }> {
  const now = Date.now()
  const runId = `r${randomBytes(10).toString('hex')}`
  const writ: Writ = {
    v: WRIT_VERSION, run_id: runId, node_id: NODE_ID, node_name: 'client-1', action, pack: action.split('.')[0] as string,
    pack_digest: digestOf(action.split('.')[0] as string), args: args as Writ['args'], reason: 'job environment test', requester: { id: 'agent-1', kind: 'agent' },
    approvals: [], request_hash: 'e'.repeat(64), options: {}, issued_at: new Date(now).toISOString(), expires_at: new Date(now + 60_000).toISOString(),
    nonce: newNonce(), binding_salt: newBindingSalt(),
  }
  const reply = await cp.request(subjects.run(NODE_ID), JSON.stringify(signWrit(writ, key)), { timeout: 10_000 })
  const ack = WritAckSchema.parse(reply.json())
  const result = await eventually(async () => {
    try {
      const m = await jsm.streams.getMessage(streams.results.name, { last_by_subj: subjects.result(NODE_ID, runId) })
      return m ? RunResultSchema.parse(m.json()) : undefined
    } catch { return undefined }
  }, 20_000, `the result of ${action}`)
  return { ack, result }
}

async function alive(t: Test, d: Deployed): Promise<void> {
  t.equal(d.runner.exitCode, null, 'the runner process is still running', { output: d.runner.exitCode === null ? '' : d.output().slice(-4000) })
  const ready = await fetch(`http://127.0.0.1:${d.metricsPort}/readyz`)
  t.equal(ready.status, 200, '/readyz answers 200')
  const after = await run('debugging.loadavg', {})
  t.equal(after.result.status, 'succeeded', 'and it still runs the next writ')
  t.notMatch(d.output(), /WebAssembly|unhandled|internal error/i, 'nothing went wrong inside the runner')
}

t.test('under the job environment, every executor kind works and the runner lives on', async (t) => {
  const d = await deploy(t)
  t.match(d.agent.env.NODE_OPTIONS, /\S/, 'the job sets NODE_OPTIONS (the runner profile is exercised, not the default)')
  t.match(d.agent.env.NOMAD_ADDR, /^unix:\/\/.+\/secrets\/api\.sock$/, 'Nomad is the Task API socket in the secrets dir')

  const exec = await run('debugging.loadavg', {})
  t.equal(exec.result.status, 'succeeded', `exec: debugging.loadavg (${exec.result.error ?? ''})`)
  t.match(exec.result.stdout, /^\d+\.\d+ \d+\.\d+ \d+\.\d+/, 'the load averages came back')

  mkdirSync(join(d.dataDir, 'client', 'csi', 'node', 'democratic-csi', 'per-alloc', LOCAL_ALLOC, 'vmstorage-data-0', 'rw-file-system-single-node-writer'), { recursive: true })
  const list = await run('storage.csi_volume_ls', {})
  t.equal(list.result.status, 'succeeded', `list: storage.csi_volume_ls under the job's nomad_data_dir (${list.result.error ?? ''})`)
  t.match(list.result.stdout, /per-alloc/, 'the CSI mount tree under <data_dir>/client/csi came back')

  const logs = await run('docker.logs', { container: 'plugin-democratic-csi-node', tail: 50 })
  t.equal(logs.result.status, 'succeeded', `docker socket: docker.logs (${logs.result.error ?? ''})`)
  t.match(logs.result.stderr, /blkid output empty for \/dev\/dm-5/, "the plugin container's stderr line came back demultiplexed")

  const node = await run('nomad.node_status', { node_id: NODE_ID })
  t.equal(node.result.status, 'succeeded', `Task API socket: nomad.node_status (${node.result.error ?? ''})`)
  t.equal((node.result.parsed as { ID?: string } | undefined)?.ID, NODE_ID, 'the node record parsed')
  const alloc = await run('nomad.alloc_status', { alloc_id: LOCAL_ALLOC })
  t.equal(alloc.result.status, 'succeeded', `Task API socket: nomad.alloc_status after its locality lookup (${alloc.result.error ?? ''})`)
  t.ok(d.nomad.requests.every((r) => r.headers['x-nomad-token'] === WORKLOAD_IDENTITY), 'every Nomad call carried the workload identity')
  t.same(d.nomad.requests.map((r) => `${r.method} ${r.path}`), [`GET /v1/node/${NODE_ID}`, `GET /v1/allocation/${LOCAL_ALLOC}`, `GET /v1/allocation/${LOCAL_ALLOC}`],
    'exactly the documented calls: the node, then the lookup and the read')
  await alive(t, d)
})

t.test('under the job environment with Nomad over https (a CA from NOMAD_CACERT), the runner lives on', async (t) => {
  const pki = createTestPki()
  t.teardown(() => pki.remove())
  const server = pki.issue('nomad-agent', 'DNS:client.global.nomad,IP:127.0.0.1', 'serverAuth')
  const d = await deploy(t, () => ({ NOMAD_CACERT: pki.caFile }), { key: server.key, cert: server.cert })
  const node = await run('nomad.node_status', { node_id: NODE_ID })
  t.equal(node.result.status, 'succeeded', `https: nomad.node_status (${node.result.error ?? ''})`)
  t.same(d.nomad.requests.map((r) => `${r.method} ${r.path}`), [`GET /v1/node/${NODE_ID}`], 'the one call reached the https agent')
  await alive(t, d)
})
