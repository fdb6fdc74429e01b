// Bench: a writ round trip over NATS for debugging.loadavg (sign → request →
// verify → journal → execFile → result via JetStream) against a direct
// execFile of the same command in the same process. `idleRssKb` is the
// runner's idle RSS under given NODE_OPTIONS (runner-rss.js has the table).
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { pino } from 'pino'
import { loadPacks } from '@writ/packs'
import { WRIT_VERSION, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects } from '@writ/packs/protocol'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { percentile, startNats } from './nats-for-bench.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 1000)
const root = resolve(new URL('..', import.meta.url).pathname)
const stock = join(root, 'packs', 'stock')
const pexec = promisify(execFile)

export async function runnerRoundtrip() {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-'))
  const keys = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), keys.publicPem)
  const key = loadSigningKey(keys.privatePem)
  const nc = await connect({ servers: nats.url })
  await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const env = { WRIT_NATS_URL: nats.url, WRIT_NODE_ID: 'bench', WRIT_NODE_NAME: 'bench', WRIT_PACKS: stock, WRIT_TRUSTED_KEYS: join(dir, 'trusted.pem'), WRIT_JOURNAL: join(dir, 'journal.jsonl') }
  const runner = await startNodeRunner(loadRunnerConfig({}, env), pino({ level: 'silent' }))
  const digest = loadPacks([stock]).packs.find((p) => p.id === 'debugging').digest
  const action = loadPacks([stock]).packs.find((p) => p.id === 'debugging').actions.get('debugging.loadavg')
  const cmd = action.spec.execution.command
  const enc = new TextEncoder()

  const oneWrit = async () => {
    const now = Date.now()
    const writ = { v: WRIT_VERSION, run_id: `run_${randomBytes(8).toString('hex')}`, node_id: 'bench', node_name: 'bench', action: 'debugging.loadavg', pack: 'debugging', pack_digest: digest, args: {}, reason: 'bench', requester: { id: 'bench', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {}, issued_at: new Date(now).toISOString(), expires_at: new Date(now + 60000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt() }
    const sub = nc.subscribe(subjects.result('bench', writ.run_id), { max: 1 })
    const t0 = performance.now()
    await nc.request(subjects.run('bench'), enc.encode(JSON.stringify(signWrit(writ, key))), { timeout: 5000 })
    for await (const m of sub) { JSON.parse(new TextDecoder().decode(m.data)); break }
    return performance.now() - t0
  }
  const oneDirect = async () => {
    const t0 = performance.now()
    await pexec(cmd.binary, cmd.argv)
    return performance.now() - t0
  }
  for (let i = 0; i < 20; i++) { await oneWrit(); await oneDirect() }
  const writ = []; const direct = []
  for (let i = 0; i < RUNS; i++) { writ.push(await oneWrit()); direct.push(await oneDirect()) }
  writ.sort((a, b) => a - b); direct.sort((a, b) => a - b)
  await runner.close(); await nc.close(); await nats.stop(); rmSync(dir, { recursive: true, force: true })
  const r = (x) => x.toFixed(2)
  return {
    title: `writ round trip over NATS vs direct execFile — debugging.loadavg (${cmd.binary} ${cmd.argv.join(' ')}), ${RUNS} runs each`,
    rows: [
      ['direct execFile', r(percentile(direct, 50)), r(percentile(direct, 99))],
      ['writ over NATS', r(percentile(writ, 50)), r(percentile(writ, 99))],
      ['ratio writ/direct', (percentile(writ, 50) / percentile(direct, 50)).toFixed(2) + 'x', (percentile(writ, 99) / percentile(direct, 99)).toFixed(2) + 'x'],
      ['overhead (ms)', r(percentile(writ, 50) - percentile(direct, 50)), r(percentile(writ, 99) - percentile(direct, 99))],
    ],
    header: ['', 'p50 ms', 'p99 ms'],
  }
}

/** `extraArgs` are more runner flags (the passkeys bench adds an approver registry). */
export async function idleRssKb(nodeOptions, extraArgs = []) {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-rss-'))
  writeFileSync(join(dir, 'trusted.pem'), generateSigningKeyPair().publicPem)
  const child = spawn(process.execPath, [join(root, 'node-runner', 'dist', 'cli.js'), 'run', '--nats-url', nats.url, '--node-id', 'rss', '--packs', stock, '--trusted-keys', join(dir, 'trusted.pem'), '--journal', join(dir, 'j.jsonl'), ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions } })
  let log = ''
  child.stdout.on('data', (d) => { log += d })
  for (let i = 0; i < 100 && !log.includes('connected to NATS'); i++) await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 3000))
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1])
  child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r))
  await nats.stop(); rmSync(dir, { recursive: true, force: true })
  return rssKb
}
