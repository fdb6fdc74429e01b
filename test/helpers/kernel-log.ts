/**
 * A kernel log for a test node, in the form the kernel keeps it and
 * `dmesg --raw` prints it (`<priority>[seconds] message`), built from real
 * lines in ../shared/fixtures/dmesg. Messages are kept verbatim; each gets the
 * facility and level its source logs it with.
 *
 * - journal_failing_path_dm_prefix_reinstating.f1c5200d.log (a multipath map
 *   losing and regaining a path): kernel lines become kernel records at their
 *   own times; multipathd's lines (among them the table reload with
 *   `queue_if_no_path`) become daemon records, as journald forwards them to
 *   the kernel log — `dmesg --kernel` leaves them out, as on a real host.
 * - kernel_ext4_mounted_opts_null.rr-5473.log: the EXT4 mount line, placed a
 *   few seconds after the path came back (its own capture is from another
 *   boot), so the log reads as the incident did: path lost, back, a fresh
 *   filesystem mounted.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FIXTURES_DIR } from '../doubles/fixtures-dir.js'

const DMESG = join(FIXTURES_DIR, 'dmesg')
const KERN_WARNING = 4
const KERN_INFO = 6
const DAEMON_NOTICE = 3 * 8 + 5

const stamp = (seconds: number): string => `[${seconds.toFixed(6).padStart(12)}]`

function journalRecords(): Array<{ at: number, record: string }> {
  const lines = readFileSync(join(DMESG, 'journal_failing_path_dm_prefix_reinstating.f1c5200d.log'), 'utf8').split('\n').filter(Boolean)
  return lines.map((line) => {
    const m = /^\[\s*(\d+\.\d+)\] \S+ (kernel|multipathd\[\d+\]): (.*)$/.exec(line)
    if (!m) throw new Error(`fixture line not understood: ${line}`)
    const at = Number(m[1])
    const record = m[2] === 'kernel' ? `<${KERN_WARNING}>${stamp(at)} ${m[3]}` : `<${DAEMON_NOTICE}>${stamp(at)} ${m[2]}: ${m[3]}`
    return { at, record }
  })
}

function ext4MountMessage(): string {
  const line = readFileSync(join(DMESG, 'kernel_ext4_mounted_opts_null.rr-5473.log'), 'utf8').split('\n').find((l) => l.includes('mounted filesystem with ordered data mode. Opts: (null)'))
  if (!line) throw new Error('the EXT4 mount line is missing from its fixture')
  return line.replace(/^\[\s*\d+\.\d+\] /, '')
}

/** The test node's kernel log, one record a line. */
export function incidentKernelLog(): string {
  const journal = journalRecords()
  const last = Math.max(...journal.map((r) => r.at))
  return `${[...journal.map((r) => r.record), `<${KERN_INFO}>${stamp(last + 4.2)} ${ext4MountMessage()}`].join('\n')}\n`
}
