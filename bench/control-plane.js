// Benches through the control plane's HTTP API (the control plane as its own
// `writ serve` process, as deployed; runners and client in this one): per-run latency of
// debugging.loadavg against a direct execFile of the same command (same
// process), audited dispatch throughput with 50 in-process runners on an
// action that spawns no process, and the control plane's RSS with 200
// simulated nodes heartbeating.
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { request, Agent } from 'undici'
import { connect } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { pino } from 'pino'
import { loadPacks } from '@writ/packs'
import { PROTOCOL_VERSION, generateSigningKeyPair, subjects } from '@writ/packs/protocol'
import { hashToken } from '@writ/control-plane'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { freePort, percentile, startNats } from './nats-for-bench.js'
import { auditRows, auditVerify } from './audit-verify.js'

const root = resolve(new URL('..', import.meta.url).pathname)
const stock = join(root, 'packs', 'stock')
const pexec = promisify(execFile)
const TOKEN = 'writ_a_bench-token-not-secret'

function writeBenchPack(dir, listRoot) {
  mkdirSync(join(dir, 'bench', 'actions'), { recursive: true })
  writeFileSync(join(dir, 'bench', 'pack.yaml'), 'schema_version: 1\nid: bench\nname: Bench\nversion: 1.0.0\nactions: [actions/ls.yaml, actions/clock.yaml, actions/clock_gated.yaml]\n')
  writeFileSync(join(dir, 'bench', 'actions', 'ls.yaml'), `schema_version: 1\nid: bench.ls\ntitle: List a small folder\nkind: list\nrisk: low\nside_effects: [None.]\nexecution: { list: { root: "${listRoot}" }, timeout: 5s }\noutput: { parser: json }\nexamples: [{ title: ls, args: {} }]\n`)
  // The same command twice: prints the wall-clock moment the runner started it (ns). One runs at once, one waits for a person.
  for (const [id, risk] of [['clock', 'low'], ['clock_gated', 'high']]) {
    writeFileSync(join(dir, 'bench', 'actions', `${id}.yaml`), `schema_version: 1\nid: bench.${id}\ntitle: Print the time\nkind: exec\nrisk: ${risk}\nside_effects: [None.]\nexecution: { command: { binary: /bin/date, argv: ["+%s.%N"] }, timeout: 5s }\nexamples: [{ title: now, args: {} }]\n`)
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineJiffies() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = (f[3] ?? 0) + (f[4] ?? 0)
  const total = f.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

function cpuSecondsOf(pid) {
  // utime + stime of a whole process (all threads), from /proc, in seconds.
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/**
 * NATS, the control plane as its own `writ serve` process (as deployed), and
 * `runners` node-runners in this process. Reports CPU per process so a figure
 * can be split into control plane, runners + client, and nats-server.
 */
export async function stack({ runners, extraPacks, rules, principals = [], config: extra = {} }) {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-cp-'))
  const kp = generateSigningKeyPair()
  writeFileSync(join(dir, 'key.pem'), kp.privatePem)
  writeFileSync(join(dir, 'key.pub.pem'), kp.publicPem)
  const listRoot = join(dir, 'list-root'); mkdirSync(listRoot); writeFileSync(join(listRoot, 'a'), 'a')
  const packRoot = join(dir, 'packs'); writeBenchPack(packRoot, listRoot)
  const packDirs = [stock, ...(extraPacks ? [packRoot] : [])]
  const port = await freePort()
  const config = {
    listen: { host: '127.0.0.1', port }, nats: { servers: [nats.url], name: 'bench' }, jetstream: { replicas: 1 },
    packs: { dirs: packDirs }, signing: { key_file: join(dir, 'key.pem') },
    principals: [{ id: 'bench-agent', kind: 'agent', token_sha256: hashToken(TOKEN), groups: [], rate_per_minute: 10_000_000 }, ...principals],
    policy: { rules: rules ?? [{ name: 'all', match: {}, decision: 'allow' }] }, log: { level: 'warn' },
    limits: { body_bytes: 65536, rate_per_minute: 10_000_000 },
    ...extra,
  }
  writeFileSync(join(dir, 'cp.yaml'), JSON.stringify(config))
  // BENCH_CPU_PROF=DIR writes a V8 CPU profile of the control-plane process there.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []
  const cp = spawn(process.execPath, [...prof, join(root, 'control-plane', 'dist', 'cli.js'), 'serve', '--config', join(dir, 'cp.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const cpExited = new Promise((r) => cp.once('exit', r))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false)
    if (ok) break
    if (cp.exitCode !== null) throw new Error('the control plane exited during start')
    await new Promise((r) => setTimeout(r, 50))
  }
  const started = []
  for (let i = 0; i < runners; i++) {
    started.push(await startNodeRunner({ ...loadRunnerConfig({}, { WRIT_NATS_URL: nats.url, WRIT_NODE_ID: `bench-${i}`, WRIT_NODE_NAME: `bench-${i}`, WRIT_PACKS: packDirs.join(':'), WRIT_TRUSTED_KEYS: join(dir, 'key.pub.pem'), WRIT_JOURNAL: join(dir, `journal-${i}.jsonl`) }), heartbeatIntervalMs: 1000, maxConcurrentRuns: 256 }, pino({ level: 'silent' })))
  }
  const agent = new Agent({ connections: 128, pipelining: 1 })
  for (let i = 0; i < 100; i++) {
    const r = await request(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${TOKEN}` }, dispatcher: agent })
    const body = await r.body.json()
    if (body.nodes?.filter((n) => n.online).length === runners) break
    await new Promise((r) => setTimeout(r, 100))
  }
  const run = async (action, node) => {
    const r = await request(`${url}/v1/runs`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action, node, args: {}, reason: 'bench', wait: 30 }) })
    const body = await r.body.json()
    if (body.status !== 'succeeded') throw new Error(`run ended ${body.status}: ${body.status_reason ?? JSON.stringify(body).slice(0, 200)}`)
    return body
  }
  /** CPU seconds so far: control-plane process, this process (runners + client), nats-server. */
  const cpu = () => {
    const own = process.cpuUsage()
    return { controlPlane: cpuSecondsOf(cp.pid), bench: (own.user + own.system) / 1e6, nats: cpuSecondsOf(nats.pid) }
  }
  const journals = started.map((_, i) => join(dir, `journal-${i}.jsonl`))
  // Runners and control plane only, NATS stays: the control plane's shutdown
  // checkpoint covers the tail, and the chain can then be verified as a person would.
  let writStopped
  const stopWrit = () => (writStopped ??= (async () => {
    for (const r of started) await r.close()
    cp.kill('SIGTERM'); await cpExited
  })())
  const stop = async () => {
    await stopWrit()
    await agent.close(); await nats.stop(); rmSync(dir, { recursive: true, force: true })
  }
  return { run, stop, stopWrit, url, cpu, natsUrl: nats.url, agent, token: TOKEN, trustedKeyFile: join(dir, 'key.pub.pem'), journals, cpPid: cp.pid }
}

export async function httpLatency() {
  const RUNS = Number(process.env.BENCH_RUNS ?? 1000)
  const s = await stack({ runners: 1 })
  const action = loadPacks([stock]).packs.find((p) => p.id === 'debugging').actions.get('debugging.loadavg').spec.execution.command
  // A yardstick for the overhead: one JetStream write and its ack, at the same
  // cadence. A run needs three such writes one after another (record + audit
  // before the writ leaves; audit, then record, after the result).
  const nc = await connect({ servers: s.natsUrl })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: 'BENCH_YARDSTICK', subjects: ['bench.yardstick'] })
  const js = jetstream(nc)
  const payload = new Uint8Array(700)
  const direct = []; const viaApi = []; const jsWrite = []
  for (let i = 0; i < 30; i++) { await s.run('debugging.loadavg', 'bench-0'); await pexec(action.binary, action.argv) }
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now(); await pexec(action.binary, action.argv); direct.push(performance.now() - t0)
    t0 = performance.now(); await s.run('debugging.loadavg', 'bench-0'); viaApi.push(performance.now() - t0)
    t0 = performance.now(); await js.publish('bench.yardstick', payload); jsWrite.push(performance.now() - t0)
  }
  await nc.close()
  await s.stop()
  direct.sort((a, b) => a - b); viaApi.sort((a, b) => a - b); jsWrite.sort((a, b) => a - b)
  const f = (x) => x.toFixed(2)
  return {
    title: `POST /v1/runs (wait) for debugging.loadavg vs direct execFile of ${action.binary} ${action.argv.join(' ')}, ${RUNS} runs each (target: p50 overhead ≤ 3 ms)`,
    header: ['', 'p50 ms', 'p99 ms'],
    rows: [
      ['direct execFile', f(percentile(direct, 50)), f(percentile(direct, 99))],
      ['writ HTTP API (audited)', f(percentile(viaApi, 50)), f(percentile(viaApi, 99))],
      ['ratio', `${(percentile(viaApi, 50) / percentile(direct, 50)).toFixed(2)}x`, `${(percentile(viaApi, 99) / percentile(direct, 99)).toFixed(2)}x`],
      ['overhead (ms)', f(percentile(viaApi, 50) - percentile(direct, 50)), f(percentile(viaApi, 99) - percentile(direct, 99))],
      ['yardstick: one JetStream write + ack', f(percentile(jsWrite, 50)), f(percentile(jsWrite, 99))],
    ],
  }
}

export async function throughput() {
  const RUNNERS = 50
  const TOTAL = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 6000)
  const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 96)
  const s = await stack({ runners: RUNNERS, extraPacks: true })
  for (let i = 0; i < 200; i++) await s.run('bench.ls', `bench-${i % RUNNERS}`)
  let next = 0; let done = 0; let failed = 0
  const cpu0 = s.cpu()
  const m0 = machineJiffies()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < TOTAL) {
      const i = next++
      try { await s.run('bench.ls', `bench-${i % RUNNERS}`); done++ } catch { failed++ }
    }
  }))
  const secs = (performance.now() - t0) / 1000
  const cpu1 = s.cpu()
  const m1 = machineJiffies()
  const busy = (m1.busy - m0.busy) / (m1.total - m0.total)
  const cores = availableParallelism()
  const perRun = (k) => (((cpu1[k] - cpu0[k]) * 1e6) / Math.max(1, done)).toFixed(0)
  // The audit chain this produced must still verify, every event of it, checked the way an operator checks it.
  let audit
  try {
    await s.stopWrit()
    audit = await auditVerify({ natsUrl: s.natsUrl, trustedKeyFile: s.trustedKeyFile, journals: s.journals })
  } finally { await s.stop() }
  return {
    title: `audited dispatch throughput via HTTP: control plane as its own writ serve process, ${RUNNERS} runners in this process, bench.ls (kind: list, no process), ${TOTAL} runs, ${CONCURRENCY} concurrent (target ≥ 1,500/s)`,
    header: ['', 'value'],
    rows: [
      ['runs succeeded', String(done)], ['runs failed', String(failed)], ['seconds', secs.toFixed(2)], ['runs/s', (done / secs).toFixed(0)],
      ['CPU µs per run: control plane (writ serve)', perRun('controlPlane')],
      ['CPU µs per run: 50 runners + HTTP client (bench process)', perRun('bench')],
      ['CPU µs per run: nats-server', perRun('nats')],
      [`machine CPU busy (all ${cores} cores, incl. kernel)`, `${(busy * 100).toFixed(0)}%`],
      ['machine CPU µs per run (all processes and kernel)', (((m1.busy - m0.busy) / 100) * 1e6 / Math.max(1, done)).toFixed(0)],
      [`runs/s the machine could carry at 100% busy`, (done / secs / busy).toFixed(0)],
      ...auditRows(audit),
    ],
  }
}

export async function rssWith200Nodes() {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-rss-cp-'))
  const kp = generateSigningKeyPair()
  writeFileSync(join(dir, 'key.pem'), kp.privatePem)
  const port = await freePort()
  writeFileSync(join(dir, 'cp.yaml'), JSON.stringify({ listen: { host: '127.0.0.1', port }, nats: { servers: [nats.url] }, packs: { dirs: [stock] }, signing: { key_file: join(dir, 'key.pem') }, log: { level: 'warn' } }))
  const child = spawn(process.execPath, [join(root, 'control-plane', 'dist', 'cli.js'), 'serve', '--config', join(dir, 'cp.yaml')], { stdio: 'ignore' })
  const nc = await connect({ servers: nats.url })
  const packs = loadPacks([stock]).packs.map((p) => ({ id: p.id, version: p.version, digest: p.digest, actions: p.actions.size }))
  const readRss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024
  await new Promise((r) => setTimeout(r, 2000))
  const idle = readRss()
  const startedAt = new Date().toISOString()
  let seq = 0
  const beat = () => {
    for (let i = 0; i < 200; i++) {
      nc.publish(subjects.heartbeat(`sim-${i}`), JSON.stringify({ v: PROTOCOL_VERSION, node_id: `sim-${i}`, node_name: `sim-${i}.dc1.example`, version: '0.1.0', started_at: startedAt, at: new Date().toISOString(), seq, draining: false, interval_ms: 1000, in_flight: 0, packs, nomad: { datacenter: 'dc1', node_pool: 'default' } }))
    }
    seq++
  }
  const timer = setInterval(beat, 1000); beat()
  await new Promise((r) => setTimeout(r, 15_000))
  const nodes = await (await fetch(`http://127.0.0.1:${port}/healthz`)).status
  const withNodes = readRss()
  clearInterval(timer)
  child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r))
  await nc.close(); await nats.stop(); rmSync(dir, { recursive: true, force: true })
  return {
    title: 'control-plane RSS (writ serve process) with 200 simulated nodes heartbeating every second for 15 s',
    header: ['', 'VmRSS'],
    rows: [['idle, no nodes', `${idle.toFixed(1)} MiB`], ['200 nodes heartbeating', `${withNodes.toFixed(1)} MiB`], ['healthz', String(nodes)]],
  }
}
