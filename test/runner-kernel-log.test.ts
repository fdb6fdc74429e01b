/**
 * A runner given a kernel-log file: `debugging.dmesg_tail` reads that file
 * with the real dmesg, the pack's filters (`--kernel`, `levels`) still apply,
 * and the dmesg parser returns level, facility and subsystem per line.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir, uptime } from 'node:os'
import { startRunnerHarness } from './helpers/runner-harness.js'
import { incidentKernelLog } from './helpers/kernel-log.js'

t.test('dmesg_tail reads the configured kernel log', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-kernel-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'kmsg.log')
  writeFileSync(file, incidentKernelLog())
  const h = await startRunnerHarness({ extraConfig: { kernelLogFile: file } })
  t.teardown(() => h.stop())

  const all = await h.run('debugging.dmesg_tail', {})
  t.equal(all.result?.status, 'succeeded', all.result?.error ?? all.result?.stderr ?? 'no result')
  const entries = all.result?.parsed as Array<{ level: string, facility: string, subsystem?: string, text: string, timestamp: number }>
  t.same(entries.map((e) => [e.facility, e.level, e.text]), [
    ['kern', 'warn', 'device-mapper: multipath: 254:6: Reinstating path 8:48.'],
    ['kern', 'warn', 'device-mapper: multipath: 254:6: Failing path 8:48.'],
    ['kern', 'info', 'EXT4-fs (md0): mounted filesystem with ordered data mode. Opts: (null)'],
  ], 'kernel records only: multipathd\'s own lines are not the kernel\'s (--kernel)')
  t.match(entries[2], { subsystem: 'EXT4-fs (md0)', timestamp: 1535673.491531 })
  t.ok(entries.every((e) => !('at' in e)), 'a file\'s records come from another boot: no wall-clock time is made up for them')

  const warnings = await h.run('debugging.dmesg_tail', { levels: ['warn'] })
  t.same((warnings.result?.parsed as Array<{ text: string }>).map((e) => e.text), [
    'device-mapper: multipath: 254:6: Reinstating path 8:48.', 'device-mapper: multipath: 254:6: Failing path 8:48.',
  ], 'the levels filter still applies')
})

t.test('without a kernel-log file, dmesg_tail reads this host\'s kernel buffer', async (t) => {
  const h = await startRunnerHarness()
  t.teardown(() => h.stop())
  const own = await h.run('debugging.dmesg_tail', {})
  t.equal(own.result?.status, 'succeeded', own.result?.stderr ?? 'no result')
  t.notMatch(own.result?.stdout ?? '', /254:6: Failing path 8:48/, 'not the test node\'s log')
  t.match(own.result?.stdout ?? '', /^<\d+>\[/, 'raw records with their priority, as the pack declares')
  // This host's own records get the wall-clock instant they were logged: after boot, and not after the run ended.
  const records = own.result?.parsed as Array<{ timestamp?: number, at?: string }>
  const boot = Date.now() - uptime() * 1000
  const finished = Date.parse(own.result?.finished_at ?? '')
  t.ok(records.length > 0 && records.every((e) => typeof e.timestamp !== 'number' || typeof e.at === 'string'), 'every record with seconds since boot has a wall-clock time')
  t.ok(records.every((e) => e.at === undefined || (Date.parse(e.at) >= boot - 2000 && Date.parse(e.at) <= finished + 1000)), 'between boot and the run\'s end')
})
