#!/usr/bin/env node
/**
 * CPU time of one multipath watchdog pass with 200 maps in the topology, for
 * `multipath -ll` text and `multipathd show maps json`, next to a baseline
 * that only reads the same bytes.
 *
 * Run after a build:  npx tsc -b && node bench/watchdog-pass.js [--passes 50] [--maps 200] [--json]
 *
 * "parse" rows are in-process only (parser + stuck detection + metrics
 * render); "pass" rows run MultipathWatchdog.runPass() for real: spawning the
 * topology command (a stand-in script that cats the bytes), parsing, metrics
 * and the atomic textfile. CPU is this process's user+system time
 * (process.cpuUsage); the child's own CPU is not included.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { parseMultipathJson, parseMultipathText, stuckMaps, writeMultipathdMapsJson } from '../node-runner/dist/parsers/index.js'
import { MultipathWatchdog } from '../node-runner/dist/watchdog/multipath-watchdog.js'
import { WatchdogEventPublisher } from '../node-runner/dist/watchdog/watchdog-events.js'
import { WatchdogMetrics } from '../node-runner/dist/watchdog/watchdog-metrics.js'

const { values } = parseArgs({ options: { passes: { type: 'string', default: '50' }, maps: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } })
const PASSES = Number(values.passes)
const MAPS = Number(values.maps)
const FIXTURE = new URL('../../shared/fixtures/multipath/ll_two_maps_mpatha_mpathb_normal.txt', import.meta.url)

/** 200 maps shaped like the real mpatha of the fixture, renamed and renumbered. */
function topologyText(n) {
  const lines = readFileSync(FIXTURE, 'utf8').split('\n')
  const start = lines.findIndex((l) => l.startsWith('mpatha '))
  const block = lines.slice(start, start + 6).join('\n')
  const out = [lines[0]] // keep the config warning line multipath prints first
  for (let i = 0; i < n; i++) {
    const hex = i.toString(16).padStart(4, '0')
    out.push(block
      .replace('mpatha (360014054dab0c38acbe481b985650efa) dm-2', `mpath${i} (360014054dab0c38acbe481b98565${hex}) dm-${i + 2}`)
      .replace(/sdd 8:48/, `sd${i}a 8:${(i * 2) % 256}`).replace(/sde 8:64/, `sd${i}b 8:${(i * 2 + 1) % 256}`))
  }
  return `${out.join('\n')}\n`
}

function cpuPer(iterations, fn) {
  const before = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn()
  const d = process.cpuUsage(before)
  return { cpuUs: (d.user + d.system) / iterations, wallUs: Number(process.hrtime.bigint() - t0) / 1000 / iterations }
}
async function cpuPerAsync(iterations, fn) {
  await fn() // warm-up
  const before = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) await fn()
  const d = process.cpuUsage(before)
  return { cpuUs: (d.user + d.system) / iterations, wallUs: Number(process.hrtime.bigint() - t0) / 1000 / iterations }
}

const dir = mkdtempSync(join(tmpdir(), 'writ-bench-wd-'))
try {
  const text = topologyText(MAPS)
  const json = writeMultipathdMapsJson(parseMultipathText(text))
  const textFile = join(dir, 'll.txt')
  const jsonFile = join(dir, 'maps.json')
  writeFileSync(textFile, text)
  writeFileSync(jsonFile, json)
  const standIn = (name, file) => {
    const p = join(dir, name)
    writeFileSync(p, `#!/bin/sh\nexec cat '${file}'\n`)
    chmodSync(p, 0o755)
    return p
  }
  const failing = join(dir, 'no-multipathd')
  writeFileSync(failing, '#!/bin/sh\necho "ux_socket_connect: No such file or directory" >&2\nexit 1\n')
  chmodSync(failing, 0o755)

  const inProcess = (parse, file) => async () => {
    const topo = parse(readFileSync(file, 'utf8'))
    const metrics = new WatchdogMetrics()
    const stuck = new Set(stuckMaps(topo).map((m) => m.name))
    metrics.observeTopology(new Map(topo.maps.map((m) => [m.name, stuck.has(m.name)])))
    await metrics.render()
  }
  const watchdogFor = (multipathdBin, multipathBin) => new MultipathWatchdog({
    config: {
      intervalMs: 30_000, kickTimeoutMs: 10_000, maxBackoffMs: 600_000, queryTimeoutMs: 15_000, nodeId: 'bench', nodeName: 'bench',
      multipathdBin, multipathBin, ddBin: 'dd', deviceDir: '/nonexistent', once: false, logLevel: 'silent', textfileDir: dir,
    },
    log: pino({ level: 'silent' }),
    events: WatchdogEventPublisher.start({ nodeId: 'bench', nodeName: 'bench', log: pino({ level: 'silent' }) }),
  })
  const viaText = watchdogFor(failing, standIn('multipath', textFile))
  const viaJson = watchdogFor(standIn('multipathd', jsonFile), join(dir, 'unused'))
  const check = await viaText.runPass()
  const checkJson = await viaJson.runPass()
  if (!check.ok || check.maps !== MAPS || !checkJson.ok || checkJson.maps !== MAPS) throw new Error(`bench topology did not parse: ${check.error ?? checkJson.error}`)

  const parseIters = Math.max(PASSES * 4, 100)
  const rows = [
    ['baseline: read the -ll bytes', cpuPer(parseIters, () => readFileSync(textFile, 'utf8')), text.length],
    ['baseline: read the JSON bytes', cpuPer(parseIters, () => readFileSync(jsonFile, 'utf8')), json.length],
    ['parse -ll text + stuck + metrics', await cpuPerAsync(parseIters, inProcess(parseMultipathText, textFile)), text.length],
    ['parse JSON + stuck + metrics', await cpuPerAsync(parseIters, inProcess(parseMultipathJson, jsonFile)), json.length],
    ['pass: multipathd fails → multipath -ll', await cpuPerAsync(PASSES, () => viaText.runPass()), text.length],
    ['pass: multipathd show maps json', await cpuPerAsync(PASSES, () => viaJson.runPass()), json.length],
  ]
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ maps: MAPS, passes: PASSES, rows: rows.map(([name, r, bytes]) => ({ name, cpu_ms: r.cpuUs / 1000, wall_ms: r.wallUs / 1000, bytes })) })}\n`)
  } else {
    process.stdout.write(`watchdog pass, ${MAPS} maps, CPU of this process per pass (user+sys)\n`)
    for (const [name, r, bytes] of rows) process.stdout.write(`  ${name.padEnd(42)} ${(r.cpuUs / 1000).toFixed(3).padStart(8)} ms CPU  ${(r.wallUs / 1000).toFixed(3).padStart(8)} ms wall  (${bytes} bytes)\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
