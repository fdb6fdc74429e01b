/**
 * Kernel and daemon log lines as `dmesg` (plain, `--raw`, `-T`, `-x`,
 * `--time-format iso`), syslog files and `journalctl` print them.
 */

/** Syslog severities, index = numeric level. */
export const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]
/** Syslog facilities, index = numeric facility (`<priority>` >> 3). */
export const LOG_FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'res0', 'res1', 'res2', 'res3', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const

/** One log entry. */
export interface DmesgEntry {
  /** Seconds since boot (`[   20.884574]`), else the wall-clock text as printed (ISO, syslog, `dmesg -T`). */
  timestamp?: number | string
  /** Seconds since boot when the line carries it after a wall-clock `timestamp` (syslog of kernel lines). */
  sinceBoot?: number
  level?: LogLevel
  facility?: string
  /** syslog / journal host and program (`localhost multipathd[26335]:`). */
  host?: string
  program?: string
  pid?: number
  /** The message's leading tag: `EXT4-fs (dm-8)`, `device-mapper: multipath`, `sd 2:0:0:1`, `md0` … */
  subsystem?: string
  /** The message after every prefix above (subsystem tag included). */
  text: string
  /** Wall-clock instant (ISO) of a record from the runner's own kernel (dmesg-wall-clock.ts). */
  at?: string
}

const RAW_PRIORITY_RE = /^<(\d{1,3})>/
const DECODE_RE = /^([a-z0-9]+)\s*:\s*(emerg|alert|crit|err|warn|notice|info|debug)\s*: ?/
const BOOT_SECONDS_RE = /^\[\s*(\d+\.\d+)\] ?/
const HUMAN_TIME_RE = /^\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?/
// dmesg --time-format iso separates microseconds with a comma; journalctl's ISO formats do not.
const DMESG_ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d+[+-]\d\d:?\d\d) /
const ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) /
// Syslog date, optionally with a year in front (SONiC) and fractions; day may be blank-padded twice ("Oct  15").
const SYSLOG_TIME_RE = /^((?:\d{4} )?[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?) /
// A grep prefix ("syslog:", "syslog.1:") directly in front of a syslog or ISO date.
const GREP_PREFIX_RE = /^[\w.\-/]+:(?=(?:\d{4} )?[A-Z][a-z]{2} +\d|\d{4}-\d\d-\d\dT)/
const HOST_PROGRAM_RE = /^([^\s:]+) (?:(EMERG|ALERT|CRIT|ERR|ERROR|WARNING|WARN|NOTICE|INFO|DEBUG) )?([\w.@/-]+)(?:\[(\d+)\])?: ?/
const LEVEL_WORDS: Record<string, LogLevel> = {
  EMERG: 'emerg', ALERT: 'alert', CRIT: 'crit', ERR: 'err', ERROR: 'err', WARNING: 'warn', WARN: 'warn', NOTICE: 'notice', INFO: 'info', DEBUG: 'debug',
}

/**
 * Parses log text into entries. A line without any recognized timestamp that
 * follows a timestamped one is a wrapped continuation (e-mailed or folded
 * logs) and is appended to the previous entry; blank lines are dropped.
 */
export function parseDmesg(stdout: string): DmesgEntry[] {
  const entries: DmesgEntry[] = []
  let sawTimestamp = false
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '') continue
    const entry = parseDmesgLine(line)
    const previous = entries[entries.length - 1]
    if (entry.timestamp === undefined && entry.level === undefined && sawTimestamp && previous !== undefined) {
      previous.text = `${previous.text} ${line.trim()}`
      previous.subsystem = subsystemOf(previous.text) ?? previous.subsystem
      continue
    }
    if (entry.timestamp !== undefined) sawTimestamp = true
    entries.push(entry)
  }
  return entries
}

/** Parses one line (see {@link parseDmesg}); never throws: unknown prefixes stay in `text`. */
export function parseDmesgLine(line: string): DmesgEntry {
  let rest = line.replace(GREP_PREFIX_RE, '')
  const entry: DmesgEntry = { text: '' }
  const raw = RAW_PRIORITY_RE.exec(rest)
  if (raw) {
    const prio = Number(raw[1])
    entry.level = LOG_LEVELS[prio & 7]
    entry.facility = LOG_FACILITIES[prio >> 3] ?? `facility${prio >> 3}`
    rest = rest.slice(raw[0].length)
  } else {
    const decoded = DECODE_RE.exec(rest)
    if (decoded) {
      entry.facility = decoded[1] as string
      entry.level = decoded[2] as LogLevel
      rest = rest.slice(decoded[0].length)
    }
  }
  let m: RegExpExecArray | null
  let expectHostProgram = false
  if ((m = BOOT_SECONDS_RE.exec(rest))) {
    entry.timestamp = Number(m[1])
    rest = rest.slice(m[0].length)
    // journalctl -o short-monotonic: "[1535664.790944] localhost multipathd[26335]: …"
    const hp = HOST_PROGRAM_RE.exec(rest)
    if (hp && (hp[3] === 'kernel' || hp[4] !== undefined)) expectHostProgram = true
  } else if ((m = HUMAN_TIME_RE.exec(rest)) || (m = DMESG_ISO_RE.exec(rest))) {
    entry.timestamp = m[1] as string
    rest = rest.slice(m[0].length)
  } else if ((m = ISO_RE.exec(rest)) || (m = SYSLOG_TIME_RE.exec(rest))) {
    entry.timestamp = m[1] as string
    rest = rest.slice(m[0].length)
    expectHostProgram = !rest.startsWith('| ')
    // multipathd -v3 to a terminal: "Aug 31 10:49:09 | CX_201: …"
    if (!expectHostProgram) rest = rest.slice(2)
  }
  if (expectHostProgram) {
    const hp = HOST_PROGRAM_RE.exec(rest)
    if (hp) {
      entry.host = hp[1] as string
      if (hp[2] !== undefined) entry.level ??= LEVEL_WORDS[hp[2]]
      entry.program = hp[3] as string
      if (hp[4] !== undefined) entry.pid = Number(hp[4])
      rest = rest.slice(hp[0].length)
      const boot = BOOT_SECONDS_RE.exec(rest)
      if (boot && typeof entry.timestamp === 'string') {
        entry.sinceBoot = Number(boot[1])
        rest = rest.slice(boot[0].length)
      }
    }
  }
  entry.text = rest
  const subsystem = subsystemOf(rest)
  if (subsystem !== undefined) entry.subsystem = subsystem
  return entry
}

const FS_RE = /^(EXT[234]-fs|XFS|BTRFS|F2FS)(?: (?:warning|error|info|notice|critical))? \((?:device )?([^)\s]+)\)/
const DM_RE = /^device-mapper: ([a-z][\w-]*)(?=:)/
const SCSI_ADDR_RE = /^([a-z][\w-]*) (\d+:\d+:\d+:\d+):/
const PCI_DRIVER_RE = /^([a-z][\w-]*) (\[[0-9a-fA-F:.]+\])/
const TAG_RE = /^([A-Za-z][\w.-]*?)(?:\[\d+\])?: /

/** The leading tag of a kernel message, normalized (`EXT4-fs warning (device dm-8)` → `EXT4-fs (dm-8)`). */
export function subsystemOf(text: string): string | undefined {
  const t = text.trimStart()
  let m: RegExpExecArray | null
  if ((m = FS_RE.exec(t))) return `${m[1]} (${m[2]})`
  if ((m = DM_RE.exec(t))) return `device-mapper: ${m[1]}`
  if ((m = SCSI_ADDR_RE.exec(t))) return `${m[1]} ${m[2]}`
  if ((m = PCI_DRIVER_RE.exec(t))) return `${m[1]} ${m[2]}`
  if ((m = TAG_RE.exec(t))) return m[1]
  return undefined
}
