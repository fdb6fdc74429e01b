/**
 * The multipath watchdog as an operator runs it (`writ-node-runner watchdog
 * multipath`), against scripted stand-ins for multipath/multipathd that
 * replay real fixture outputs, with kick reads on real loop devices, a FIFO
 * nobody writes, and a loop device whose backing store is frozen (a real
 * uninterruptible read, as on a queueing multipath map).
 */
import t from 'tap'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { NodeEventSchema, subjects, type NodeEvent } from '@writ/packs/protocol'
import { parseMultipathText, writeMultipathdMapsJson } from '../node-runner/dist/parsers/index.js'
import { startNatsServer } from './helpers/nats-server.js'

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/multipath/', import.meta.url))
const CLI = fileURLToPath(new URL('../node-runner/dist/cli.js', import.meta.url))
const HEALTHY = 'll_two_maps_mpatha_mpathb_normal.txt'
const STUCK = 'll_no_active_pg_all_enabled_two_maps.txt'
const METRIC_NAMES = [
  'writ_multipath_map_stuck', 'writ_multipath_map_stuck_seconds', 'writ_multipath_kicks_total', 'writ_multipath_kick_failures_total',
  'writ_multipath_kick_hung', 'writ_multipath_maps', 'writ_multipath_pass_errors_total', 'writ_multipath_last_success_timestamp_seconds',
]

type LogLine = Record<string, unknown> & { msg: string, pass?: number, map?: string }

// ---------------------------------------------------------------- stand-ins

/**
 * One script installed as both `multipath` and `multipathd`. It prints
 * `<scenario>/<phase>.txt` (multipath -ll) or `<phase>.json` (multipathd, only
 * when the scenario has JSON; otherwise multipathd answers like a stopped
 * daemon). In phase "stuck" it switches to "recovered" once every kick target
 * listed in `kick-targets` has completed more reads than its baseline
 * (/sys/block/<dev>/stat) — so only a real kick read recovers the map.
 */
function installStandIns(scenario: string): string {
  const bin = join(scenario, 'bin')
  mkdirSync(bin)
  const script = `#!/bin/sh
S='${scenario}'
tool=$(basename "$0")
echo "$tool $*" >> "$S/calls.log"
if [ "$tool" = multipathd ] && [ ! -f "$S/stuck.json" ]; then
  echo "ux_socket_connect: No such file or directory" >&2
  exit 1
fi
phase=$(cat "$S/phase")
if [ "$phase" = stuck ] && [ -s "$S/kick-targets" ]; then
  all=1
  while read -r dev base; do
    set -- $(cat "/sys/block/$dev/stat")
    [ "$1" -gt "$base" ] || all=0
  done < "$S/kick-targets"
  [ "$all" = 1 ] && phase=recovered
fi
ext=txt
[ "$tool" = multipathd ] && ext=json
exec cat "$S/$phase.$ext"
`
  writeFileSync(join(bin, 'multipath'), script)
  chmodSync(join(bin, 'multipath'), 0o755)
  symlinkSync('multipath', join(bin, 'multipathd'))
  return bin
}

/** Points the scenario's phases at real fixture files (symlinks: fixtures are never copied) and, with `json`, writes multipathd replies from them. */
function scenarioFiles(scenario: string, phases: Record<string, string>, json: boolean): void {
  for (const [phase, fixture] of Object.entries(phases)) {
    symlinkSync(join(FIXTURES, fixture), join(scenario, `${phase}.txt`))
    if (json) writeFileSync(join(scenario, `${phase}.json`), writeMultipathdMapsJson(parseMultipathText(readFileSync(join(FIXTURES, fixture), 'utf8'))))
  }
}

// ---------------------------------------------------------------- the watchdog process

interface RunningWatchdog {
  proc: ChildProcess
  logs: LogLine[]
  metricsUrl: () => string
  waitFor(what: string, pred: (logs: LogLine[]) => boolean, timeoutMs?: number): Promise<void>
  stop(): Promise<number | null>
}

function startWatchdog(bin: string, args: string[]): RunningWatchdog {
  const proc = spawn(process.execPath, [CLI, 'watchdog', 'multipath', '--node-id', 'wd-test', '--log-level', 'debug', ...args], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, WRIT_NATS_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: LogLine[] = []
  let buf = ''
  let stderr = ''
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try { logs.push(JSON.parse(line) as LogLine) } catch { logs.push({ msg: `(not JSON) ${line}` }) }
    }
  })
  proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return {
    proc, logs,
    metricsUrl: () => {
      const l = logs.find((x) => x.msg === 'serving /metrics and /healthz')
      return `http://${String(l?.listen)}/metrics`
    },
    async waitFor(what, pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (!pred(logs)) {
        if (proc.exitCode !== null) throw new Error(`watchdog exited (${proc.exitCode}) while waiting for ${what}: ${stderr}`)
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last logs: ${JSON.stringify(logs.slice(-6))}`)
        await sleep(25)
      }
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM')
      return exited
    },
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const passesDone = (logs: LogLine[]): LogLine[] => logs.filter((l) => l.msg === 'pass done')
const passWithKicks = (logs: LogLine[]): LogLine | undefined => passesDone(logs).find((p) => (p.kicks as unknown[]).length > 0)
const kickLogs = (logs: LogLine[], map: string): LogLine[] => logs.filter((l) => l.msg === 'kicking stuck map with one 4 KiB direct read' && l.map === map)

/** SIGKILL's bit in the pending-signal masks of /proc/<pid>/status. */
const SIGKILL_BIT = 1n << 8n

/** Processes whose argv contains `if=<device>` (our kick reads): their state, and whether a SIGKILL waits for them. */
function readersOf(device: string): Array<{ pid: number, state: string, killPending: boolean }> {
  const out: Array<{ pid: number, state: string, killPending: boolean }> = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`if=${device}`)) continue
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const pending = [...readFileSync(`/proc/${pid}/status`, 'utf8').matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].map((m) => BigInt(`0x${m[1]}`))
      out.push({ pid: Number(pid), state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3), killPending: pending.some((p) => (p & SIGKILL_BIT) !== 0n) })
    } catch { /* exited meanwhile */ }
  }
  return out
}

// ---------------------------------------------------------------- Prometheus text format 0.0.4, strictly

interface Sample { name: string, labels: Record<string, string>, value: number }
/** Parses exposition text, throwing on anything the format does not allow. */
function parsePrometheusText(text: string): { types: Map<string, string>, samples: Sample[] } {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const samples: Sample[] = []
  const seen = new Set<string>()
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    let m: RegExpExecArray | null
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      if (helps.has(m[1] as string)) throw new Error(`line ${i + 1}: second HELP for ${m[1]}`)
      helps.add(m[1] as string)
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (types.has(m[1] as string)) throw new Error(`line ${i + 1}: second TYPE for ${m[1]}`)
      if (samples.some((s) => s.name === m?.[1])) throw new Error(`line ${i + 1}: TYPE after samples of ${m[1]}`)
      types.set(m[1] as string, m[2] as string)
    } else if ((m = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)$`).exec(line))) {
      const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string]
      if (!/^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/.test(valueText)) throw new Error(`line ${i + 1}: bad value "${valueText}" (timestamps are not allowed here either)`)
      if (!types.has(name)) throw new Error(`line ${i + 1}: sample of ${name} without a TYPE line`)
      const labels: Record<string, string> = {}
      for (const [, k, v] of (labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = (v as string).replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1')
      const key = `${name}${JSON.stringify(labels)}`
      if (seen.has(key)) throw new Error(`line ${i + 1}: duplicate series ${key}`)
      seen.add(key)
      samples.push({ name, labels, value: Number(valueText) })
    } else if (line !== '' && !line.startsWith('# ')) {
      throw new Error(`line ${i + 1}: not a HELP, TYPE, comment or sample line: "${line}"`)
    }
  }
  return { types, samples }
}
const valueOf = (samples: Sample[], name: string, map?: string): number | undefined =>
  samples.find((s) => s.name === name && (map === undefined || s.labels.map === map))?.value

// ---------------------------------------------------------------- loop devices

function loopSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: kick reads on real loop devices need root (run the suite as root)'
  if (spawnSync('losetup', ['--version']).status !== 0) return 'losetup not available'
  return undefined
}
function attachLoop(dir: string, name: string): { dev: string, name: string, detach(): void } {
  const file = join(dir, `${name}.img`)
  execFileSync('truncate', ['-s', '8M', file])
  const dev = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim()
  return { dev, name: dev.replace('/dev/', ''), detach: () => { spawnSync('losetup', ['-d', dev]) } }
}
const readsCompleted = (loopName: string): number => Number(readFileSync(`/sys/block/${loopName}/stat`, 'utf8').trim().split(/\s+/)[0])

// ---------------------------------------------------------------- tests

for (const flavour of ['multipath -ll text', 'multipathd show maps json'] as const) {
  t.test(`healthy → stuck → kicked → recovered (${flavour}, kick reads on real loop devices)`, async (t) => {
    const skip = loopSkipReason()
    if (skip) { t.skip(skip, () => {}); return }
    const json = flavour !== 'multipath -ll text'
    const scenario = mkdtempSync(join(tmpdir(), 'writ-wd-'))
    const devDir = join(scenario, 'mapper')
    const textfileDir = join(scenario, 'textfile')
    mkdirSync(devDir); mkdirSync(textfileDir)
    const loops = [attachLoop(scenario, 'a'), attachLoop(scenario, 'b')]
    const nats = await startNatsServer()
    const nc = await connect({ servers: nats.url })
    const events: NodeEvent[] = []
    const sub = nc.subscribe(subjects.allEvents, { callback: (_e, m) => { const r = NodeEventSchema.safeParse(m.json()); events.push(r.success ? r.data : ({ invalid: m.string() } as unknown as NodeEvent)) } })
    let wd: RunningWatchdog | undefined
    t.teardown(async () => {
      await wd?.stop()
      sub.unsubscribe(); await nc.close(); await nats.stop()
      for (const l of loops) l.detach()
      rmSync(scenario, { recursive: true, force: true })
    })
    symlinkSync(loops[0]?.dev as string, join(devDir, 'mpatha'))
    symlinkSync(loops[1]?.dev as string, join(devDir, 'mpathb'))
    scenarioFiles(scenario, { healthy: HEALTHY, stuck: STUCK, recovered: HEALTHY }, json)
    writeFileSync(join(scenario, 'phase'), 'healthy')
    const bin = installStandIns(scenario)

    wd = startWatchdog(bin, ['--interval', '250ms', '--kick-timeout', '3s', '--device-dir', devDir, '--textfile-dir', textfileDir, '--metrics-listen', '127.0.0.1:0', '--nats-url', nats.url])
    const w = wd
    // Whoever reads the textfile at any moment reads a whole one.
    const textfile = join(textfileDir, 'writ_multipath.prom')
    const textfileReads: string[] = []
    let watching = true
    const watcher = (async () => { while (watching) { if (existsSync(textfile)) textfileReads.push(readFileSync(textfile, 'utf8')); await sleep(5) } })()

    await w.waitFor('connected to NATS', (l) => l.some((x) => x.msg.startsWith('connected to NATS')))
    await w.waitFor('two healthy passes', (l) => passesDone(l).length >= 2)
    t.same(passesDone(w.logs).map((p) => p.stuck), [[], []], 'healthy: nothing stuck, nothing kicked')
    t.equal(w.logs.filter((l) => l.msg.startsWith('kicking')).length, 0)
    t.match(w.logs.find((l) => l.msg === 'reading the topology from this source'), { source: json ? 'multipathd-json' : 'multipath-ll' })

    // The path groups re-probe: every group enabled, none active.
    writeFileSync(join(scenario, 'kick-targets'), loops.map((l) => `${l.name} ${readsCompleted(l.name)}`).join('\n') + '\n')
    writeFileSync(join(scenario, 'phase'), 'stuck')
    await w.waitFor('both kicks confirmed', (l) => l.filter((x) => x.msg === 'kick worked: map has an active path group').length >= 2)
    // The pass's own line comes after the kicks' (its stdout may arrive in a later chunk).
    await w.waitFor('the kicking pass to end', (l) => passWithKicks(l) !== undefined)
    const kickPass = passWithKicks(w.logs)
    t.same(kickPass?.stuck, ['mpatha', 'mpathb'], 'the pass saw both maps stuck')
    t.same(kickPass?.kicks, [{ map: 'mpatha', outcome: 'recovered', readMs: (kickPass?.kicks as Array<{ readMs: number }>)[0]?.readMs }, { map: 'mpathb', outcome: 'recovered', readMs: (kickPass?.kicks as Array<{ readMs: number }>)[1]?.readMs }])
    for (const l of loops) t.ok(readsCompleted(l.name) > 0, `${l.dev} was really read by the kick`)
    const passAfterKick = (kickPass?.pass ?? 0) + 3
    await w.waitFor('three more passes', (l) => passesDone(l).some((p) => (p.pass ?? 0) >= passAfterKick))
    t.same(kickLogs(w.logs, 'mpatha').length, 1, 'mpatha kicked exactly once')
    t.same(kickLogs(w.logs, 'mpathb').length, 1, 'mpathb kicked exactly once')
    t.ok(passesDone(w.logs).filter((p) => (p.pass ?? 0) > (kickPass?.pass ?? 0)).every((p) => (p.stuck as unknown[]).length === 0), 'later passes see both maps healthy')

    const res = await fetch(w.metricsUrl())
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    const { types, samples } = parsePrometheusText(await res.text())
    t.same(METRIC_NAMES.filter((n) => !types.has(n)), [], 'every metric the alert rules use is exported with a TYPE')
    t.same(METRIC_NAMES.filter((n) => !samples.some((s) => s.name === n)), [], 'and has a sample')
    for (const map of ['mpatha', 'mpathb']) {
      t.same([valueOf(samples, 'writ_multipath_kicks_total', map), valueOf(samples, 'writ_multipath_kick_failures_total', map), valueOf(samples, 'writ_multipath_map_stuck', map), valueOf(samples, 'writ_multipath_map_stuck_seconds', map), valueOf(samples, 'writ_multipath_kick_hung', map)], [1, 0, 0, 0, 0], `${map}: one kick, no failure, not stuck`)
    }
    t.equal(valueOf(samples, 'writ_multipath_maps'), 2)
    t.equal(valueOf(samples, 'writ_multipath_pass_errors_total'), 0)
    t.ok(Math.abs((valueOf(samples, 'writ_multipath_last_success_timestamp_seconds') ?? 0) - Date.now() / 1000) < 5, 'last success is now')
    t.equal((await fetch(w.metricsUrl().replace('/metrics', '/healthz'))).status, 200)

    await w.waitFor('events delivered', () => events.filter((e) => e.kind === 'multipath_kick').length >= 2)
    t.same(events.filter((e) => e.kind === 'multipath_stuck').map((e) => [e.data.map, e.severity]).sort(), [['mpatha', 'warning'], ['mpathb', 'warning']], 'a NATS event for each map that got stuck')
    t.same(events.filter((e) => e.kind === 'multipath_kick').map((e) => [e.data.map, e.data.outcome, e.severity]).sort(), [['mpatha', 'recovered', 'info'], ['mpathb', 'recovered', 'info']], 'and for each kick, reporting the recovery')
    t.ok(events.every((e) => e.node_id === 'wd-test' && e.source === 'multipath-watchdog'))

    watching = false
    await watcher
    t.equal(await w.stop(), 0, 'SIGTERM: exits 0')
    t.ok(textfileReads.length > 10, `textfile read ${textfileReads.length} times during the run`)
    const partial = textfileReads.filter((c) => { try { return parsePrometheusText(c).types.size !== METRIC_NAMES.length } catch { return true } })
    t.equal(partial.length, 0, 'never a partial textfile (temp file + rename)')
    t.same(readdirSync(textfileDir), ['writ_multipath.prom'], 'no temp files left behind')
    t.notMatch(readFileSync(textfile, 'utf8'), /^writ_\S+ \S+ \d+$/m, 'no timestamps in the textfile')
  })
}

t.test('a kick read that never completes (FIFO nobody writes) is given up at the timeout and blocks nothing', async (t) => {
  const scenario = mkdtempSync(join(tmpdir(), 'writ-wd-fifo-'))
  const devDir = join(scenario, 'mapper')
  mkdirSync(devDir)
  execFileSync('mkfifo', [join(devDir, 'mpatha')])
  // mpathb has no device node at all: its kick fails at once, and the pass goes on.
  scenarioFiles(scenario, { stuck: STUCK }, false)
  writeFileSync(join(scenario, 'phase'), 'stuck')
  const bin = installStandIns(scenario)
  const wd = startWatchdog(bin, ['--interval', '100ms', '--kick-timeout', '600ms', '--device-dir', devDir, '--metrics-listen', '127.0.0.1:0'])
  t.teardown(async () => { await wd.stop(); rmSync(scenario, { recursive: true, force: true }) })
  let maxConcurrent = 0
  let sampling = true
  const sampler = (async () => { while (sampling) { maxConcurrent = Math.max(maxConcurrent, readersOf(join(devDir, 'mpatha')).length); await sleep(10) } })()

  await wd.waitFor('the FIFO read to be given up', (l) => l.some((x) => x.msg.startsWith('kick read gave no answer in time') && x.map === 'mpatha'))
  const hung = wd.logs.find((x) => x.msg.startsWith('kick read gave no answer in time'))
  t.ok((hung?.ms as number) >= 600 && (hung?.ms as number) < 2000, `given up at the timeout (${String(hung?.ms)} ms)`)
  // The pass's own line comes after the give-up's (its stdout may arrive in a later chunk).
  await wd.waitFor('the kicking pass to end', (l) => passWithKicks(l) !== undefined)
  const first = passWithKicks(wd.logs)
  t.match(first?.kicks, [{ map: 'mpatha', outcome: 'hung' }, { map: 'mpathb', outcome: 'read_failed', detail: /ENOENT/ }])
  await wd.waitFor('later passes', (l) => passesDone(l).length >= 6)
  const durations = passesDone(wd.logs).slice(1, 6).map((p) => p.ms as number)
  t.ok(durations.every((ms) => ms < 600 + 500), `later passes end within the kick timeout (${durations.join(', ')} ms): the hung read holds none of them`)
  t.ok(wd.logs.some((x) => x.msg.startsWith('hung kick read finally exited') && x.map === 'mpatha'), 'SIGKILL ended the FIFO reader; the map is released')
  sampling = false
  await sampler
  t.equal(maxConcurrent, 1, 'never two reads on the map at once')
  const { samples } = parsePrometheusText(await (await fetch(wd.metricsUrl())).text())
  const kicks = valueOf(samples, 'writ_multipath_kicks_total', 'mpatha') ?? 0
  t.equal(valueOf(samples, 'writ_multipath_kick_failures_total', 'mpatha'), kicks, 'every kick of the FIFO counted as a failure')
  t.ok(kicks < passesDone(wd.logs).length, `backed off: ${kicks} kicks in ${passesDone(wd.logs).length} passes`)
  t.ok(wd.logs.some((x) => x.msg === 'map still stuck; backing off after failed kicks' && x.map === 'mpatha'))
  t.equal(valueOf(samples, 'writ_multipath_map_stuck', 'mpatha'), 1)
  t.ok((valueOf(samples, 'writ_multipath_map_stuck_seconds', 'mpatha') ?? 0) > 0.5, 'stuck seconds keep counting')
  t.equal(await wd.stop(), 0)
  t.same(readersOf(join(devDir, 'mpatha')), [], 'no reader left behind')

  // Nomad gives the task 10 s after SIGTERM: a read that is still waiting must not hold the exit.
  const slow = startWatchdog(bin, ['--interval', '1s', '--kick-timeout', '60s', '--device-dir', devDir])
  await slow.waitFor('a kick to start', (l) => kickLogs(l, 'mpatha').length === 1)
  await slow.waitFor('the kick read to be waiting on the FIFO', () => readersOf(join(devDir, 'mpatha')).length === 1)
  const stopping = Date.now()
  t.equal(await slow.stop(), 0, 'SIGTERM during an outstanding kick read: exits 0')
  t.ok(Date.now() - stopping < 2000, `and at once (${Date.now() - stopping} ms), without waiting for the read`)
})

t.test('a kick read stuck in D state (frozen backing store) is never repeated until it really exits', async (t) => {
  const skip = loopSkipReason() ?? (spawnSync('bindfs', ['--version']).status === 0 ? undefined : 'bindfs not installed (apt-get install bindfs): needed to freeze a loop device\'s backing store')
  if (skip) { t.skip(skip, () => {}); return }
  const scenario = mkdtempSync(join(tmpdir(), 'writ-wd-dstate-'))
  const store = join(scenario, 'store')
  const fuse = join(scenario, 'fuse')
  const devDir = join(scenario, 'mapper')
  for (const d of [store, fuse, devDir]) mkdirSync(d)
  execFileSync('bindfs', ['--no-allow-other', store, fuse])
  const bindfsPid = Number(execFileSync('pgrep', ['-n', '-f', `bindfs --no-allow-other ${store}`], { encoding: 'utf8' }).trim())
  const loop = attachLoop(fuse, 'lun')
  // An old-format topology whose one map, mpath0, has no active group; mpath0 is the loop device on the store.
  scenarioFiles(scenario, { stuck: 'topo_old_bracket_no_active_pg_prio.txt' }, false)
  writeFileSync(join(scenario, 'phase'), 'stuck')
  symlinkSync(loop.dev, join(devDir, 'mpath0'))
  const bin = installStandIns(scenario)
  let wd: RunningWatchdog | undefined
  const thaw = (): void => { try { process.kill(bindfsPid, 'SIGCONT') } catch { /* gone */ } }
  t.teardown(async () => {
    thaw()
    await wd?.stop()
    for (let i = 0; i < 100 && readersOf(loop.dev).length > 0; i++) await sleep(50)
    loop.detach()
    spawnSync('fusermount', ['-u', fuse])
    rmSync(scenario, { recursive: true, force: true })
  })
  // Freeze the store: the loop device's reads now wait on a FUSE daemon that does not run.
  process.kill(bindfsPid, 'SIGSTOP')
  wd = startWatchdog(bin, ['--interval', '150ms', '--kick-timeout', '500ms', '--device-dir', devDir])
  const w = wd
  await w.waitFor('the read to hang', (l) => l.some((x) => x.msg.startsWith('kick read gave no answer in time')))
  // The watchdog sends SIGKILL before it logs the give-up.
  const readers = readersOf(join(devDir, 'mpath0'))
  t.equal(readers.length, 1, 'one kick read outstanding')
  t.match(readers[0], { state: 'D', killPending: true }, 'in uninterruptible sleep, with the SIGKILL pending')
  // The pass's own line comes after the give-up's: count the later passes from it.
  await w.waitFor('the kicking pass to end', (l) => passWithKicks(l) !== undefined)
  const hungAt = passesDone(w.logs).length
  await w.waitFor('four more passes while it hangs', (l) => passesDone(l).length >= hungAt + 4)
  t.equal(kickLogs(w.logs, 'mpath0').length, 1, 'no second read started while the first is stuck')
  t.ok(w.logs.filter((x) => x.msg.startsWith('map still stuck but its earlier kick read has not returned')).length >= 4, 'each later pass says why it does not kick')
  const later = readersOf(join(devDir, 'mpath0'))
  t.equal(later.length, 1)
  t.match(later[0], { pid: readers[0]?.pid, state: 'D', killPending: true }, 'four passes later the same read is still there: SIGKILL could not end it')

  thaw()
  await w.waitFor('the hung read to exit', (l) => l.some((x) => x.msg.startsWith('hung kick read finally exited')))
  await w.waitFor('a new kick after the release', (l) => kickLogs(l, 'mpath0').length >= 2)
  t.pass('the map is kicked again only after the stuck read exited')
  t.equal(await w.stop(), 0)
})

t.test('keeps running when multipath is missing or prints garbage, and says so', async (t) => {
  const scenario = mkdtempSync(join(tmpdir(), 'writ-wd-err-'))
  t.teardown(() => rmSync(scenario, { recursive: true, force: true }))
  const bin = join(scenario, 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'multipath'), '#!/bin/sh\necho "hcil     dev dev_t pri dm_st  chk_st"\n')
  chmodSync(join(bin, 'multipath'), 0o755)
  const once = spawnSync(process.execPath, [CLI, 'watchdog', 'multipath', '--once', '--multipathd-bin', join(scenario, 'nope'), '--multipath-bin', join(bin, 'multipath'), '--textfile-dir', scenario], { encoding: 'utf8', env: { ...process.env, WRIT_NATS_URL: '' } })
  t.equal(once.status, 1, '--once exits 1 when the topology could not be read')
  const failed = once.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine).find((l) => l.msg === 'pass failed: topology not read')
  t.match(failed?.attempts, { 'multipathd-json': /not found/, 'multipath-ll': /show paths\/maps. table/ })
  const { samples } = parsePrometheusText(readFileSync(join(scenario, 'writ_multipath.prom'), 'utf8'))
  t.equal(valueOf(samples, 'writ_multipath_pass_errors_total'), 1)
  t.equal(valueOf(samples, 'writ_multipath_last_success_timestamp_seconds'), undefined, 'no success yet: absent, so absent() alerts fire')
  const bad = spawnSync(process.execPath, [CLI, 'watchdog', 'multipath', '--interval', 'soon'], { encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--interval "soon" is not a duration/)
})
