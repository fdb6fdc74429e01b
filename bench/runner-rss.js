// Bench: the runner's RSS under the profile its Nomad job starts it with,
// idle and after one action of each executor kind — exec, a confined listing,
// Docker's socket, Nomad's Task API socket, Nomad over https — against the
// API doubles, beside the same figures with the JIT on and with Node's
// defaults. A profile in which any kind fails is marked: a memory figure
// counts only with every feature working.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { loadPacks } from '@writ/packs'
import { WRIT_VERSION, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects } from '@writ/packs/protocol'
import { startNats } from './nats-for-bench.js'
import { loadApiDoubles } from './api-doubles.js'

const root = resolve(new URL('..', import.meta.url).pathname)
const stock = join(root, 'packs', 'stock')
const NODE_ID = '1ac61e33-a465-2ace-f63f-cffa1285e7eb'
const ALLOC = '5d2e8f10-7b3c-4e6a-9f21-3c4d5e6f7a8b'
const TOKEN = 'b1946ac9-2f6b-4b6e-8f1a-0c3d5e7f9a1b'
/** The runner job's NODE_OPTIONS (jobs/writ-node-runner.nomad.hcl), read from the file so the bench follows the job. */
const JOB_NODE_OPTIONS = /NODE_OPTIONS\s*=\s*"([^"]*)"/.exec(readFileSync(join(root, 'jobs', 'writ-node-runner.nomad.hcl'), 'utf8'))?.[1] ?? ''
const SETTLE_MS = Number(process.env.BENCH_RSS_SETTLE_MS ?? 3000)

const mib = (kb) => `${(kb / 1024).toFixed(1)}`
const status = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8')
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(status(pid))[1])
const hwmKb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(status(pid))[1])
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export async function runnerRssByKind() {
  const doubles = await loadApiDoubles()
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-rss-kinds-'))
  const keys = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), keys.publicPem)
  const key = loadSigningKey(keys.privatePem)
  const nc = await connect({ servers: nats.url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const digests = Object.fromEntries(loadPacks([stock]).packs.map((p) => [p.id, p.digest]))
  const local = doubles.allocationLike({ id: ALLOC, nodeId: NODE_ID, jobId: 'victoria-metrics', taskGroup: 'storage' })
  const docker = await doubles.startDockerDouble()
  const nomadSocket = await doubles.startNomadDouble({ token: TOKEN, unixSocket: true, extraAllocs: [local] })
  const pki = doubles.createTestPki()
  const cert = pki.issue('nomad-agent', 'DNS:client.global.nomad,IP:127.0.0.1', 'serverAuth')
  const nomadHttps = await doubles.startNomadDouble({ token: TOKEN, tls: { key: cert.key, cert: cert.cert }, extraAllocs: [local] })
  // The listing's root (<data_dir>/client/csi) with a volume's mount under it.
  const dataDir = join(dir, 'nomad-data')
  mkdirSync(join(dataDir, 'client', 'csi', 'node', 'democratic-csi', 'per-alloc', ALLOC, 'vmstorage-data-0'), { recursive: true })

  const run = async (action, args) => {
    const now = Date.now()
    const pack = action.split('.')[0]
    const writ = {
      v: WRIT_VERSION, run_id: `r${randomBytes(10).toString('hex')}`, node_id: NODE_ID, node_name: 'bench', action, pack, pack_digest: digests[pack],
      args, reason: 'bench', requester: { id: 'bench', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {},
      issued_at: new Date(now).toISOString(), expires_at: new Date(now + 60_000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt(),
    }
    const sub = nc.subscribe(subjects.result(NODE_ID, writ.run_id), { max: 1 })
    await nc.request(subjects.run(NODE_ID), JSON.stringify(signWrit(writ, key)), { timeout: 10_000 })
    for await (const m of sub) return m.json()
    throw new Error('no result')
  }

  const start = async (nodeOptions, nomadFlags) => {
    const child = spawn(process.execPath, [join(root, 'node-runner', 'dist', 'cli.js'), 'run', '--nats-url', nats.url, '--node-id', NODE_ID, '--packs', stock,
      '--trusted-keys', join(dir, 'trusted.pem'), '--journal', join(dir, `j-${randomBytes(4).toString('hex')}.jsonl`), '--docker-socket', docker.socketPath,
      '--nomad-token', TOKEN, ...nomadFlags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions, WRIT_NOMAD_DATA_DIR: dataDir } })
    let log = ''
    child.stdout.on('data', (d) => { log += d })
    child.stderr.on('data', (d) => { log += d })
    for (let i = 0; i < 200 && !log.includes('connected to NATS') && child.exitCode === null; i++) await sleep(50)
    if (child.exitCode !== null) throw new Error(`runner exited at start: ${log}`)
    await sleep(SETTLE_MS)
    return { child, log: () => log }
  }
  const stop = async ({ child }) => { if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)) } }

  const profiles = [["the job's", JOB_NODE_OPTIONS], ['JIT on', JOB_NODE_OPTIONS.replace(/\s*--jitless\b/, '').trim()], ['Node default', '']]
  const kinds = [
    ['exec', 'debugging.loadavg', {}],
    ['list', 'storage.csi_volume_ls', {}],
    ['docker socket', 'docker.logs', { container: docker.containers[0].Names[0].slice(1), tail: 20 }],
    ['nomad Task API socket', 'nomad.alloc_status', { alloc_id: ALLOC }],
  ]
  const rows = []
  for (const [name, nodeOptions] of profiles) {
    const failures = []
    const a = await start(nodeOptions, ['--nomad-addr', nomadSocket.addr])
    const cells = [mib(rssKb(a.child.pid))]
    for (const [kind, action, args] of kinds) {
      const r = a.child.exitCode === null ? await Promise.race([run(action, args), sleep(15_000).then(() => ({ status: 'no result' }))]) : { status: 'runner died' }
      if (r.status !== 'succeeded') failures.push(`${kind}: ${r.status}${r.error ? ` (${r.error})` : ''}`)
      cells.push(a.child.exitCode === null ? mib(rssKb(a.child.pid)) : 'dead')
    }
    const peakA = a.child.exitCode === null ? hwmKb(a.child.pid) : 0
    await stop(a)
    const b = await start(nodeOptions, ['--nomad-addr', nomadHttps.addr, '--nomad-cacert', pki.caFile])
    const idleB = rssKb(b.child.pid)
    const r = await Promise.race([run('nomad.node_status', { node_id: NODE_ID }), sleep(15_000).then(() => ({ status: 'no result' }))])
    if (r.status !== 'succeeded') failures.push(`nomad https: ${r.status}${r.error ? ` (${r.error})` : ''}`)
    cells.push(`${mib(idleB)} → ${b.child.exitCode === null ? mib(rssKb(b.child.pid)) : 'dead'}`)
    const peak = Math.max(peakA, b.child.exitCode === null ? hwmKb(b.child.pid) : 0)
    await stop(b)
    rows.push([`${name} (${nodeOptions || 'none'})`, ...cells, mib(peak), failures.length === 0 ? 'every kind succeeded' : `FAILED: ${failures.join('; ')}`])
  }
  await nomadSocket.close(); await nomadHttps.close(); await docker.close(); pki.remove(); doubles.close()
  await nc.close(); await nats.stop(); rmSync(dir, { recursive: true, force: true })
  return {
    title: `node-runner RSS in MiB (CLI process, ${SETTLE_MS} ms after connect, then after one action of each kind, cumulative); target ≤ 64 MiB idle under the job's profile with every kind working`,
    header: ['NODE_OPTIONS profile', 'idle', '+exec', '+list', '+docker', '+nomad socket', 'nomad https: idle → +call', 'peak (VmHWM)', 'every kind'],
    rows,
  }
}
