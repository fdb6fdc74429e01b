// `npm run bench -- fanout`: plans over a simulated fleet. N in-process
// node-runners of the real runner code, each with its own NATS connection,
// journal (on tmpfs) and heartbeat at the deployed default interval; the
// control plane as its own `writ serve` process, as deployed. For 10, 100 and
// 1,000 targets: p50 and p99 from `POST /v1/plans` to the last result
// aggregated (the plan finished; 5 plans each) on `bench.ls` (kind: list, no
// process spawned), NATS messages per target, and the control plane's CPU per
// target; then the same fleet idle: the control plane's CPU share and RSS.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pino } from 'pino'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { hashToken } from '@writ/control-plane'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { freePort, percentile } from './nats-for-bench.js'

const root = resolve(new URL('..', import.meta.url).pathname)
const stock = join(root, 'packs', 'stock')
const TOKEN = 'writ_a_bench-token-not-secret'
const SIZES = (process.env.BENCH_FANOUT_SIZES ?? '10,100,1000').split(',').map(Number)
const PLANS = Number(process.env.BENCH_FANOUT_PLANS ?? 5)
const IDLE_SECONDS = Number(process.env.BENCH_FANOUT_IDLE_S ?? 30)

const cpuSecondsOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

/** nats-server -js with its monitoring port, so messages can be counted (`/varz` in_msgs). */
async function startMonitoredNats(dir) {
  const port = await freePort()
  const http = await freePort()
  writeFileSync(join(dir, 'nats.conf'), `listen: 127.0.0.1:${port}\nhttp: 127.0.0.1:${http}\nmax_payload: 8MB\njetstream { store_dir: "${join(dir, 'js')}" }\n`)
  const proc = spawn('nats-server', ['-c', join(dir, 'nats.conf')], { stdio: 'ignore' })
  for (let i = 0; i < 200; i++) {
    if (await fetch(`http://127.0.0.1:${http}/varz`).then((r) => r.ok, () => false)) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const varz = async () => (await fetch(`http://127.0.0.1:${http}/varz`)).json()
  return { url: `nats://127.0.0.1:${port}`, pid: proc.pid, varz, stop: async () => { proc.kill(); await new Promise((r) => proc.once('exit', r)) } }
}

export async function fanout() {
  const fleetSize = Math.max(...SIZES)
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-fanout-'))
  // Runner journals on tmpfs, as the simulated fleet's disks.
  const journals = mkdtempSync(join('/dev/shm', 'writ-fanout-journals-'))
  const nats = await startMonitoredNats(dir)
  const kp = generateSigningKeyPair()
  writeFileSync(join(dir, 'key.pem'), kp.privatePem)
  writeFileSync(join(dir, 'key.pub.pem'), kp.publicPem)
  const listRoot = join(dir, 'list-root'); mkdirSync(listRoot); writeFileSync(join(listRoot, 'a'), 'a')
  const packs = join(dir, 'packs', 'bench')
  mkdirSync(join(packs, 'actions'), { recursive: true })
  writeFileSync(join(packs, 'pack.yaml'), 'schema_version: 1\nid: bench\nname: Bench\nversion: 1.0.0\nactions: [actions/ls.yaml]\n')
  writeFileSync(join(packs, 'actions', 'ls.yaml'), `schema_version: 1\nid: bench.ls\ntitle: List a small folder\nkind: list\nrisk: low\nside_effects: [None.]\nexecution: { list: { root: "${listRoot}" }, timeout: 10s }\noutput: { parser: json }\nexamples: [{ title: ls, args: {} }]\n`)
  const port = await freePort()
  writeFileSync(join(dir, 'cp.yaml'), JSON.stringify({
    listen: { host: '127.0.0.1', port }, nats: { servers: [nats.url], name: 'bench' }, packs: { dirs: [stock, join(dir, 'packs')] },
    signing: { key_file: join(dir, 'key.pem') }, log: { level: 'warn' },
    principals: [{ id: 'bench-agent', kind: 'agent', token_sha256: hashToken(TOKEN), groups: [], rate_per_minute: 10_000_000 }],
    policy: { rules: [{ name: 'all', match: {}, decision: 'allow' }] }, limits: { body_bytes: 65536, rate_per_minute: 10_000_000 },
    plans: { max_targets: fleetSize },
  }))
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []
  const cp = spawn(process.execPath, [...prof, join(root, 'control-plane', 'dist', 'cli.js'), 'serve', '--config', join(dir, 'cp.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const cpExited = new Promise((r) => cp.once('exit', r))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 400 && !(await fetch(`${url}/readyz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 50))

  const runners = []
  for (let i = 0; i < fleetSize; i++) {
    const id = `fan-${String(i).padStart(4, '0')}`
    const config = loadRunnerConfig({}, {
      WRIT_NATS_URL: nats.url, WRIT_NODE_ID: id, WRIT_NODE_NAME: id, WRIT_PACKS: join(dir, 'packs'), WRIT_TRUSTED_KEYS: join(dir, 'key.pub.pem'),
      WRIT_JOURNAL: join(journals, `${id}.jsonl`),
    })
    runners.push(await startNodeRunner(config, pino({ level: 'silent' })))
  }
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
  for (let i = 0; i < 600; i++) {
    const body = await (await fetch(`${url}/v1/nodes`, { headers })).json()
    if (body.nodes?.filter((n) => n.online).length === fleetSize) break
    await new Promise((r) => setTimeout(r, 100))
  }
  // Idle first: the fleet heartbeating, nothing requested yet.
  await new Promise((r) => setTimeout(r, 10_000))
  const i0 = cpuSecondsOf(cp.pid)
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000))
  const idleShare = ((cpuSecondsOf(cp.pid) - i0) / IDLE_SECONDS) * 100
  const idleRss = rssMiB(cp.pid)

  const names = runners.map((r) => r.nodeId)
  const runPlan = async (n) => {
    const res = await fetch(`${url}/v1/plans`, {
      method: 'POST', headers,
      body: JSON.stringify({ action: 'bench.ls', reason: 'fanout bench', targets: n === fleetSize ? { selector: 'ID matches "^fan-"' } : { nodes: names.slice(0, n) }, wait: 60 }),
    })
    const view = await res.json()
    if (view.status !== 'succeeded' || view.counts.succeeded !== n) throw new Error(`plan over ${n} ended ${view.status}: ${view.status_reason ?? JSON.stringify(view).slice(0, 300)}`)
    if (view.groups.length !== 1) throw new Error(`expected one group of identical output, got ${view.groups.length}`)
    return view
  }
  await runPlan(Math.min(10, fleetSize))
  const rows = []
  let cpuPerTargetAtMax
  const perTarget = []
  for (const n of SIZES) {
    const times = []
    const v0 = await nats.varz()
    const c0 = cpuSecondsOf(cp.pid)
    const w0 = performance.now()
    for (let i = 0; i < PLANS; i++) {
      const t0 = performance.now()
      await runPlan(n)
      times.push(performance.now() - t0)
    }
    const seconds = (performance.now() - w0) / 1000
    const cpuUs = ((cpuSecondsOf(cp.pid) - c0) * 1e6) / (n * PLANS)
    const v1 = await nats.varz()
    // Heartbeats keep flowing meanwhile (fleet / interval per second); they are not the plans' messages.
    const heartbeats = (fleetSize / 5) * seconds
    const msgs = (v1.in_msgs - v0.in_msgs - heartbeats) / (n * PLANS)
    times.sort((a, b) => a - b)
    rows.push([String(n), percentile(times, 50).toFixed(0), percentile(times, 99).toFixed(0), msgs.toFixed(1), cpuUs.toFixed(0), ((cpuUs * n) / 1000).toFixed(1)])
    perTarget.push([n, cpuUs])
    if (n === fleetSize) cpuPerTargetAtMax = cpuUs
  }

  const rssAfter = rssMiB(cp.pid)

  for (const r of runners) await r.close()
  cp.kill('SIGTERM'); await cpExited
  await nats.stop()
  rmSync(dir, { recursive: true, force: true }); rmSync(journals, { recursive: true, force: true })
  const [small, large] = [perTarget[0], perTarget.at(-1)]
  return {
    title: `fan-out: plans over a simulated fleet of ${fleetSize} in-process runners (real runner code, own NATS connection, journal on tmpfs, 5 s heartbeat), control plane as its own writ serve process, bench.ls (kind: list), ${PLANS} plans per row (targets: 1,000 targets p50 ≤ 1 s; ≤ 100 µs control-plane CPU per target; linear growth)`,
    header: ['targets', 'p50 ms', 'p99 ms', 'NATS msgs/target', 'control plane CPU µs/target', 'control plane CPU ms/plan'],
    rows: [
      ...rows,
      [`control plane CPU per target at ${fleetSize} targets: ${cpuPerTargetAtMax?.toFixed(0)} µs`, '', '', '', '', ''],
      [`CPU per plan grows ${((small?.[1] ?? 0) * (small?.[0] ?? 0) / 1000).toFixed(1)} → ${((large?.[1] ?? 0) * (large?.[0] ?? 0) / 1000).toFixed(1)} ms for ${small?.[0]} → ${large?.[0]} targets (per target ${small?.[1].toFixed(0)} → ${large?.[1].toFixed(0)} µs: at most linear; CPU is read in 10 ms ticks, coarse for small plans)`, '', '', '', '', ''],
      [`idle, ${fleetSize} runners heartbeating for ${IDLE_SECONDS} s: control plane CPU ${idleShare.toFixed(2)}% of one core, RSS ${idleRss.toFixed(0)} MiB (${rssAfter.toFixed(0)} MiB after the plans) (targets ≤ 5%, ≤ 250 MiB)`, '', '', '', '', ''],
    ],
  }
}
