/**
 * Scenario 3 (guest/scenarios/watchdog.sh): the runner's release executable
 * runs `watchdog multipath` inside the guest against a real map. The kernel's
 * own group state (dmsetup status), the watchdog's /metrics and textfile, and
 * its structured pass reports are what the test reads.
 */
import t from 'tap'
import { labSuite, mapState, one, resultLines, type LabSuite } from './lab-suite.js'
import type { LabResult, LabVm } from './lab-vm.js'

type LogLine = Record<string, unknown> & { msg: string, pass?: number }

const lab: LabSuite | undefined = await labSuite(t)

function metric(text: string | undefined, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{map="mpatha"\\})? (\\S+)$`, 'm').exec(text ?? '')
  return m ? Number(m[1]) : undefined
}
const gauges = (s: LabResult, source: 'metrics' | 'textfile'): Record<string, number | undefined> => ({
  kicks: metric(s[source], 'writ_multipath_kicks_total'),
  failures: metric(s[source], 'writ_multipath_kick_failures_total'),
  stuck: metric(s[source], 'writ_multipath_map_stuck'),
  hung: metric(s[source], 'writ_multipath_kick_hung'),
})
const watchdogLog = (vm: LabVm): LogLine[] => vm.events('watchdog_log').map((r) => JSON.parse(r.line as string) as LogLine)

if (lab) {
  t.test('3. the multipath watchdog on a real map: kicks a map with no active group; a hung kick is reported, never repeated, and recovery is seen', async (t) => {
    const wwn = '5000c50015ea7103'
    const release = lab.release()
    const vm = await lab.boot('watchdog', {
      scenario: 'watchdog', luns: [{ wwn, sizeMiB: 128 }], args: { wwn }, timeoutMs: 420_000,
      files: [{ guestPath: '/opt/writ/bin/writ-node-runner', from: release.runner, mode: 0o755 }],
    })
    const { exit, end } = await vm.finished()
    t.comment(`scenario 3 result lines (VM ${(exit.ms / 1000).toFixed(1)} s):\n${resultLines(vm, ['watchdog_log'])}`)
    t.equal(end.rc, '0', 'the scenario ran to its end')
    t.same(vm.events('error'), [], 'and reported no error')
    const log = watchdogLog(vm)
    const passes = log.filter((l) => l.msg === 'pass done')
    const kicking = log.filter((l) => l.msg === 'kicking stuck map with one 4 KiB direct read')
    t.comment(`watchdog pass reports:\n${passes.map((p) => `pass ${p.pass} source=${String(p.source)} stuck=${JSON.stringify(p.stuck)} kicks=${JSON.stringify(p.kicks)} notKicked=${JSON.stringify(p.notKicked)}`).join('\n')}`)

    t.test('a map with every group enabled and usable paths: kicked once, an active group appears, the metrics say so', async (t) => {
      t.same(mapState(one(vm, 'map_assembled').state).groups, ['E', 'E'], 'the kernel shows both groups enabled, none active')
      const first = passes.find((p) => (p.kicks as unknown[]).length > 0)
      t.match(first, { source: 'multipathd-json', stuck: ['mpatha'], kicks: [{ map: 'mpatha', outcome: 'recovered' }] }, 'the watchdog saw it stuck (via multipathd) and its kick recovered it')
      const kicked = one(vm, 'kicked')
      t.ok(mapState(kicked.state).groups.includes('A'), `the kernel now shows an active group (${kicked.state})`)
      const kicksBefore = kicking.filter((k) => (k.pass ?? 0) <= Number(kicked.passes))
      t.equal(kicksBefore.length, 1, `one kick read in ${kicked.passes} passes`)
      t.same(gauges(kicked, 'metrics'), { kicks: 1, failures: 0, stuck: 0, hung: 0 }, '/metrics: one kick, no failure, not stuck')
      t.same(gauges(kicked, 'textfile'), { kicks: 1, failures: 0, stuck: 0, hung: 0 }, 'the node_exporter textfile says the same')
    })

    t.test('every path failed under queue_if_no_path: the kick hangs and is reported, no second read, the passes go on, recovery after reinstating', async (t) => {
      const failed = mapState(one(vm, 'paths_failed').state)
      t.same([failed.groups, failed.paths.map((p) => p.state), failed.queueing], [['E', 'E'], ['F', 'F'], true], 'the kernel: no active group, every path failed, queueing')
      const hungPass = passes.find((p) => (p.kicks as Array<{ outcome: string }>).some((k) => k.outcome === 'hung'))
      t.match(hungPass, { source: 'multipath-ll', stuck: ['mpatha'], kicks: [{ map: 'mpatha', outcome: 'hung' }] }, 'the kick read gave no answer: reported as hung (multipath -ll, multipathd being stopped)')
      const hungLine = log.find((l) => l.msg.startsWith('kick read gave no answer in time'))
      t.ok(Number(hungLine?.ms) >= 5000, `given up at the kick timeout (${String(hungLine?.ms)} ms)`)
      const whileHung = one(vm, 'while_hung')
      t.equal(whileHung.max_kick_readers, '1', 'never more than one reader on the map')
      t.equal(whileHung.readers_in_d, '1', 'that reader sleeps uninterruptibly (D) in the kernel')
      t.ok(Number(whileHung.passes_since) >= 3, `${whileHung.passes_since} passes completed while it hung`)
      const releasedAt = log.findIndex((l) => l.msg.startsWith('hung kick read finally exited'))
      const duringHang = log.slice(log.indexOf(hungLine as LogLine), releasedAt)
      t.equal(duringHang.filter((l) => l.msg.startsWith('kicking')).length, 0, 'no second kick while the first read is stuck')
      t.ok(duringHang.filter((l) => l.msg.startsWith('map still stuck but its earlier kick read has not returned')).length >= 3, 'each pass says why it does not kick')
      const hung = one(vm, 'hung')
      t.same(gauges(hung, 'metrics'), { kicks: 2, failures: 1, stuck: 1, hung: 1 }, '/metrics: the hung kick counted as a failure, the map stuck, kick_hung 1')

      t.ok(releasedAt > 0, 'after reinstating, the queued read completes and the watchdog says so')
      t.ok(log.slice(releasedAt).some((l) => l.msg === 'map is no longer stuck (without a kick from this pass)'), 'and reports the map recovered')
      const recovered = one(vm, 'recovered')
      t.ok(mapState(recovered.state).groups.includes('A'), `the kernel shows an active group again (${recovered.state})`)
      t.same(gauges(recovered, 'metrics'), { kicks: 2, failures: 1, stuck: 0, hung: 0 }, '/metrics: not stuck, no hung read')
      t.equal(one(vm, 'watchdog_stopped').rc, '0', 'SIGTERM: the watchdog exits 0')
    })
  })
}
