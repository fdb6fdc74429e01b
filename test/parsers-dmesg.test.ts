/**
 * The dmesg parser on every log excerpt in ../shared/fixtures/dmesg and on
 * this machine's own kernel log in each dmesg output style.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseOutput, type DmesgEntry } from '../node-runner/dist/parsers/index.js'

const DIR = fileURLToPath(new URL('../../shared/fixtures/dmesg/', import.meta.url))
const covered = new Set<string>()
function entries(file: string): DmesgEntry[] {
  covered.add(file)
  const r = parseOutput('dmesg', readFileSync(DIR + file, 'utf8'))
  if (r.error !== undefined) throw new Error(r.error)
  return r.parsed as DmesgEntry[]
}
const subsystems = (es: DmesgEntry[]): string[] => [...new Set(es.map((e) => e.subsystem).filter((s): s is string => s !== undefined))]

t.test('dmesg [seconds] lines: EXT4 mounts on md0', async (t) => {
  const es = entries('kernel_ext4_mounted_opts_null.rr-5473.log')
  t.equal(es.length, 5)
  t.same(es.map((e) => e.timestamp), [20.284342, 20.884574, 20.962201, 21.139523, 24.356619])
  t.same(es.map((e) => e.subsystem), ['md0', 'EXT4-fs (md0)', 'EXT4-fs (md0)', 'loop', 'EXT4-fs (md0)'])
  t.equal(es[2]?.text, 'EXT4-fs (md0): mounted filesystem with ordered data mode. Opts: prjquota,rootprjquota,barrier=1')
})

t.test('EXT4 remounting read-only after I/O errors', async (t) => {
  const es = entries('kernel_ext4_remount_read_only.arista-sonic-90.log')
  t.equal(es.length, 14)
  t.ok(es.every((e) => typeof e.timestamp === 'number' && e.timestamp >= 650.87 && e.timestamp < 651))
  t.equal(es.filter((e) => e.subsystem === 'EXT4-fs (loop1)').length, 9, '"EXT4-fs error (device loop1)" and "EXT4-fs (loop1)" are one subsystem')
  t.ok(es.some((e) => e.subsystem === 'EXT4-fs (loop1)' && /Remounting filesystem read-only/.test(e.text)))
  t.equal(es.filter((e) => /^Buffer I\/O error/.test(e.text)).length, 5)
})

t.test('syslog with grep prefix, year, fractions and level word (SONiC)', async (t) => {
  const es = entries('kernel_ext4_mounted_quota_mode_none.sonic-24437.log')
  t.equal(es.length, 6)
  t.match(es[0], { timestamp: '2025 Apr 28 05:18:18.739295', sinceBoot: 932.470402, host: 'sonic', level: 'info', program: 'kernel', subsystem: 'EXT4-fs (nvme0n1p2)' })
  t.equal(es[1]?.text, 'EXT4-fs (nvme0n1p2): unmounting filesystem.')
})

t.test('syslog kernel lines after a Fibre Channel path loss', async (t) => {
  const es = entries('kernel_ext4_io_error_after_fc_path_loss.mpt-issue6.log')
  t.equal(es.length, 7)
  t.ok(es.every((e) => e.host === 'localhost' && e.program === 'kernel'))
  t.same(subsystems(es), ['qla2xxx [0000:81:00.1]', 'sd 10:0:0:0', 'EXT4-fs (dm-8)'])
  t.match(es[5], { timestamp: 'Apr 27 21:20:42', subsystem: 'EXT4-fs (dm-8)', text: /^EXT4-fs warning \(device dm-8\): ext4_end_bio:316: I\/O error -5/ })
})

t.test('journal short-monotonic with dm device numbers', async (t) => {
  const es = entries('journal_failing_path_dm_prefix_reinstating.f1c5200d.log')
  t.equal(es.length, 9)
  t.match(es[0], { timestamp: 1535664.790944, host: 'localhost', program: 'multipathd', pid: 26335, text: 'mpathc: reinstate path 8:48 (operator)' })
  const kernel = es.filter((e) => e.program === 'kernel')
  t.same(kernel.map((e) => [e.subsystem, e.text]), [
    ['device-mapper: multipath', 'device-mapper: multipath: 254:6: Reinstating path 8:48.'],
    ['device-mapper: multipath', 'device-mapper: multipath: 254:6: Failing path 8:48.'],
  ])
  t.match(es[3]?.text, /reload \[0 125829120 multipath 1 queue_if_no_path/)
})

t.test('syslog: I/O errors, failing paths, queue_if_no_path enabled (two-blank day)', async (t) => {
  const es = entries('syslog_failing_path_io_errors_queue_if_no_path_enabled.362d2e5f.log')
  t.equal(es.length, 21)
  t.equal(es[0]?.timestamp, 'Oct  15 14:40:43')
  t.same(es.filter((e) => e.subsystem === 'device-mapper: multipath').map((e) => e.text), ['device-mapper: multipath: Failing path 8:112.', 'device-mapper: multipath: Failing path 8:32.'])
  t.ok(es.some((e) => e.program === 'multipathd' && e.text === '3600a0b800029eb0a0000f2af4acde4d1: queue_if_no_path enabled'))
  t.equal(es.filter((e) => e.subsystem === 'end_request').length, 10)
})

t.test('mail-wrapped syslog lines are joined back to their entry', async (t) => {
  const es = entries('syslog_failing_path_queue_if_no_path_remaining_0.ecf84a82.log')
  t.equal(es.length, 10, '15 physical lines, 10 entries')
  t.equal(es[0]?.text, 'mpathal: sdg - tur checker reports path is in standby state')
  t.match(es.find((e) => e.program === 'kernel' && e.subsystem === 'device-mapper: multipath'), { text: 'device-mapper: multipath: Failing path 8:96.' })
  t.equal(es[9]?.text, 'mpathal: remaining active paths: 0')
  const iscsi = entries('syslog_iscsi_conn_error_failing_path_reinstated.47ac124f.log')
  t.equal(iscsi.length, 13)
  t.equal(iscsi[1]?.text, 'ping timeout of 10 secs expired, last rx 172050, last ping 177050, now 187050', 'three physical lines')
  t.match(iscsi.find((e) => e.subsystem === 'device-mapper: multipath'), { timestamp: 'Jun 23 14:13:11', text: 'device-mapper: multipath: Failing path 8:16.' })
  t.same(iscsi.filter((e) => e.program === 'iscsid').length, 2)
})

t.test('SAS soft error then a failing path', async (t) => {
  const es = entries('syslog_failing_path_remaining_active_paths_1.8f6b7cdf.log')
  t.equal(es.length, 7)
  t.same(subsystems(es), ['mpt2sas0', 'sd 1:0:0:47', 'device-mapper: multipath', 'mpathat'])
  t.match(es[6], { host: 'ictc-billy', program: 'multipathd', text: 'mpathat: remaining active paths: 1' })
})

t.test('multipathd -v3 terminal output ("date | message")', async (t) => {
  const es = entries('multipathd_v3_remaining_active_paths_0.ee198472.log')
  t.equal(es.length, 21)
  t.ok(es.every((e) => e.timestamp === 'Aug 31 10:49:09' && e.host === undefined))
  t.equal(es[20]?.text, 'CX_201: remaining active paths: 0')
  t.equal(es[20]?.subsystem, 'CX_201')
})

t.test('every dmesg fixture is covered', async (t) => {
  t.same(readdirSync(DIR).filter((f) => f !== 'README.md' && !covered.has(f)), [])
})

t.test("this machine's kernel log in every dmesg style", async (t) => {
  let plain: string
  try { plain = execFileSync('dmesg', [], { encoding: 'utf8' }) } catch (e) {
    t.skip(`dmesg cannot be read here: ${(e as Error).message.split('\n')[0]}`, () => {})
    return
  }
  // A message can run over lines: the kernel indents the lines after its first.
  const lines = plain.split('\n').filter((l) => l.trim() !== '')
  const continuations = lines.filter((l) => /^\s/.test(l))
  const base = parseOutput('dmesg', plain).parsed as DmesgEntry[]
  t.equal(base.length, lines.length - continuations.length, `one entry per message (${continuations.length} continuation line(s) here)`)
  for (const c of continuations) t.ok(base.some((e) => e.text.includes(c.trim())), `continuation kept in its message: ${c.trim()}`)
  t.ok(base.every((e) => typeof e.timestamp === 'number'), 'every line has seconds since boot')
  t.ok(base.some((e) => /Linux version/.test(e.text)))
  const styles: Array<[string[], (e: DmesgEntry) => boolean]> = [
    [['--raw'], (e) => e.level !== undefined && e.facility === 'kern' && typeof e.timestamp === 'number'],
    [['-x'], (e) => e.level !== undefined && e.facility !== undefined && typeof e.timestamp === 'number'],
    [['-T'], (e) => typeof e.timestamp === 'string' && /^[A-Z][a-z]{2} [A-Z][a-z]{2} /.test(e.timestamp)],
    [['--time-format', 'iso'], (e) => typeof e.timestamp === 'string' && /^\d{4}-\d\d-\d\dT/.test(e.timestamp)],
    [['-x', '-T'], (e) => e.level !== undefined && typeof e.timestamp === 'string'],
  ]
  for (const [args, ok] of styles) {
    const out = execFileSync('dmesg', args, { encoding: 'utf8' })
    const es = parseOutput('dmesg', out).parsed as DmesgEntry[]
    t.ok(es.length >= base.length, `dmesg ${args.join(' ')}: ${es.length} entries`)
    t.ok(es.every(ok), `dmesg ${args.join(' ')}: timestamp/level recognized on every line`)
    // The kernel may log between the two reads, so compare the common prefix.
    t.same(es.slice(0, base.length).map((e) => e.text), base.map((e) => e.text), `dmesg ${args.join(' ')}: same message text as plain dmesg`)
  }
})

t.test('raw priorities decode to level and facility', async (t) => {
  const es = parseOutput('dmesg', '<3>[  812.443210] sd 2:0:0:1: [sdc] tur failed\n<14>[  813.000001] systemd[1]: Started x\n').parsed as DmesgEntry[]
  t.match(es[0], { level: 'err', facility: 'kern', timestamp: 812.44321, subsystem: 'sd 2:0:0:1' })
  t.match(es[1], { level: 'info', facility: 'user', subsystem: 'systemd', text: 'systemd[1]: Started x' })
})
