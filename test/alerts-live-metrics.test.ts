/**
 * The alert rules read only metrics the code exports: a real control plane
 * (built and listening on loopback), a real runner with its /metrics port,
 * the multipath watchdog (against stand-ins replaying a real multipath -ll
 * fixture, as in test/watchdog.test.ts) and a scheduled-style
 * `writ audit verify --metrics-textfile` are started, their live
 * expositions read, and every metric name in every rule file must be among
 * them — with the label names the promtool unit tests give the series.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { RULE_TESTS_DIR, exports, metricNames, parseExposition, readRules, renderModuleRules, ruleTestSeries, type Exposition } from './helpers/alert-rules.js'

const RUNNER_CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const WRIT_CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
const HEALTHY_TOPOLOGY = fileURLToPath(new URL('../../shared/fixtures/multipath/ll_two_maps_mpatha_mpathb_normal.txt', import.meta.url))

/** Exported by node_exporter's textfile collector itself, not by writ: the rules read its mtime of the watchdog's file. */
const NODE_EXPORTER = new Set(['node_textfile_mtime_seconds'])
/** Labels Prometheus adds to every scraped series (the target), and a histogram bucket's bound. */
const TARGET_LABELS = new Set(['instance', 'job', 'le'])

async function text(url: string): Promise<string> {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`)
  return res.text()
}

/** `writ-node-runner watchdog multipath` with `multipath -ll` answering a healthy two-map fixture and multipathd not running. */
async function startWatchdog(t: Test, dir: string): Promise<string> {
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'multipath'), `#!/bin/sh\nexec cat '${HEALTHY_TOPOLOGY}'\n`)
  writeFileSync(join(bin, 'multipathd'), '#!/bin/sh\necho "ux_socket_connect: No such file or directory" >&2\nexit 1\n')
  for (const f of ['multipath', 'multipathd']) chmodSync(join(bin, f), 0o755)
  mkdirSync(join(dir, 'mapper'))
  const port = await freePort()
  const proc = spawn(process.execPath, [RUNNER_CLI, 'watchdog', 'multipath', '--node-id', 'wd-live', '--interval', '200ms',
    '--multipath-bin', join(bin, 'multipath'), '--multipathd-bin', join(bin, 'multipathd'), '--device-dir', join(dir, 'mapper'),
    '--metrics-listen', `127.0.0.1:${port}`], { env: { ...process.env, WRIT_NATS_URL: '' }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  t.teardown(async () => { if (proc.exitCode === null) { proc.kill('SIGTERM'); await exited } })
  const url = `http://127.0.0.1:${port}/metrics`
  // A completed pass is what registers the last-success gauge.
  await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`watchdog exited (${proc.exitCode}): ${stderr}`)
    return (await text(url).catch(() => '')).includes('writ_multipath_last_success_timestamp_seconds ')
  }, 20_000, 'the watchdog to complete a pass')
  return url
}

function writ(args: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [WRIT_CLI, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' })
    p.once('exit', (code) => resolve(code))
  })
}

t.test('every metric a rule reads is exported by the running code, with the labels its unit tests give it', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '200ms' } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const cpUrl = await app.listen({ host: '127.0.0.1', port: 0 })
  const runnerPort = await freePort()
  const runner = await startRealRunner(fx, nats.url, 'host-1', { metricsListen: `127.0.0.1:${runnerPort}` })
  t.teardown(() => runner.close())
  const dir = mkdtempSync(join(tmpdir(), 'writ-live-metrics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  // Once the control plane has heard the runner and read JetStream, every gauge has a sample; if that never
  // comes, the checks below name each metric that is missing.
  const cpText = await eventually(async () => {
    const body = await text(`${cpUrl}/metrics`)
    return /^writ_node_last_heartbeat_timestamp_seconds\{node="host-1"/m.test(body) && /^writ_jetstream_stream_bytes\{stream="WRIT_AUDIT"\}/m.test(body) ? body : undefined
  }, 15_000, 'a heartbeat and JetStream usage on the control plane\'s /metrics').catch(async (err: Error) => {
    t.comment(err.message)
    return text(`${cpUrl}/metrics`)
  })
  const runnerText = await text(`http://127.0.0.1:${runnerPort}/metrics`)
  const watchdogText = await text(await startWatchdog(t, dir))
  const textfile = join(dir, 'writ_audit_verify.prom')
  t.equal(await writ(['audit', 'verify', '--trusted-keys', fx.publicKeyFile, '--metrics-textfile', textfile], { WRIT_NATS_URL: nats.url }), 0, 'writ audit verify passes and writes its textfile')
  const sources: Array<[string, Exposition]> = [
    ['control plane', parseExposition(cpText)], ['runner', parseExposition(runnerText)],
    ['watchdog', parseExposition(watchdogText)], ['audit verify textfile', parseExposition(existsSync(textfile) ? readFileSync(textfile, 'utf8') : '')],
  ]
  const exporterOf = (name: string): Array<[string, Exposition]> => sources.filter(([, e]) => exports(e, name))

  const rendered = await renderModuleRules(dir)
  for (const [file, path] of Object.entries(rendered)) {
    for (const rule of readRules(path)) {
      for (const name of metricNames(rule.expr)) {
        if (NODE_EXPORTER.has(name)) continue
        t.ok(exporterOf(name).length > 0, `${file} ${rule.alert}: ${name} is on a live /metrics`)
      }
    }
  }

  // The promtool tests' series carry only labels the exporter gives (plus the target's).
  for (const file of ['writ.rules-test.yaml', 'multipath.rules-test.yaml']) {
    const seen = new Set<string>()
    for (const s of ruleTestSeries(join(RULE_TESTS_DIR, file))) {
      const key = `${s.name}{${[...s.labels].sort().join(',')}}`
      if (seen.has(key) || NODE_EXPORTER.has(s.name)) continue
      seen.add(key)
      const from = exporterOf(s.name)
      t.ok(from.length > 0, `${file}: ${s.name} is exported`)
      const base = s.name.replace(/_(bucket|count|sum)$/, '')
      const live = new Set(from.flatMap(([, e]) => [...(e.labels.get(s.name) ?? e.labels.get(base) ?? [])]))
      const extra = s.labels.filter((l) => !TARGET_LABELS.has(l) && !live.has(l))
      t.same(extra, [], `${file}: ${key} has the exporter's labels (${[...live].join(', ') || 'none'})`)
      const missing = [...live].filter((l) => !s.labels.includes(l))
      t.same(missing, [], `${file}: ${key} lacks none of the exporter's labels`)
    }
  }
})
