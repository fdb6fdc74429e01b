/**
 * A run's output as a person reads it on a page: JSON pretty-printed, logs
 * (kernel records, journal and container lines) from their end, kernel
 * records with their wall-clock time and warnings and errors marked, plain
 * text from its start. What a page leaves out, the "download whole output"
 * link has.
 */
import type { Run } from '../runs/index.js'

/** How much of an output one page shows in full; evidence items show less. */
export const OUTPUT_LIMITS = { page: 20_000, evidence: 4_000 } as const
const KERNEL_LINES = { page: 300, evidence: 60 } as const

export interface KernelLine { at?: string, boot?: string, severity: 'error' | 'warning' | '', text: string }

export interface OutputView {
  /** How it is shown: `json` pretty-printed, `log` from its end, `kernel` records, `text` from its start. */
  kind: 'json' | 'log' | 'kernel' | 'text'
  text: string
  lines: KernelLine[]
  /** What was left out, in words; empty when the whole output is shown. */
  note: string
  /** The run's whole-output download, for when something was left out or the output is long. */
  download: string
  empty: boolean
}

const SEVERITY: Record<string, KernelLine['severity']> = { emerg: 'error', alert: 'error', crit: 'error', err: 'error', warn: 'warning' }
const n = (x: number): string => x.toLocaleString('en-US')

function parsedOf(run: Run): unknown {
  if (run.result?.parsed !== undefined) return run.result.parsed
  return undefined
}

function jsonText(run: Run): string | undefined {
  const parsed = parsedOf(run)
  if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) return JSON.stringify(parsed, null, 2)
  const stdout = run.result?.stdout.trim() ?? ''
  if (!/^[[{]/.test(stdout)) return undefined
  try { return JSON.stringify(JSON.parse(stdout) as unknown, null, 2) } catch { return undefined }
}

/** The end of `text`, cut at a line start, at most `max` characters. */
function tail(text: string, max: number): { text: string, cut: boolean } {
  if (text.length <= max) return { text, cut: false }
  const end = text.slice(-max)
  const nl = end.indexOf('\n')
  return { text: nl >= 0 && nl < end.length - 1 ? end.slice(nl + 1) : end, cut: true }
}

function kernelLines(entries: Array<Record<string, unknown>>, max: number): { lines: KernelLine[], cut: number } {
  const shown = entries.slice(-max)
  return {
    cut: entries.length - shown.length,
    lines: shown.map((e) => ({
      ...(typeof e.at === 'string' ? { at: e.at } : {}),
      ...(typeof e.timestamp === 'number' ? { boot: `${e.timestamp.toFixed(3)} s after boot` } : typeof e.timestamp === 'string' ? { boot: e.timestamp } : {}),
      severity: SEVERITY[String(e.level)] ?? '',
      text: `${typeof e.subsystem === 'string' && !String(e.text).startsWith(e.subsystem) ? `${e.subsystem}: ` : ''}${String(e.text ?? '')}`,
    })),
  }
}

/** How `run`'s stdout reads on a page, within `where`'s limits. */
export function outputView(run: Run, parser: string | undefined, where: keyof typeof OUTPUT_LIMITS): OutputView {
  const stdout = run.result?.stdout ?? ''
  const max = OUTPUT_LIMITS[where]
  const capped = run.result?.stdout_truncated ? ' The runner capped this output at the action\'s limit.' : ''
  const base = { text: '', lines: [] as KernelLine[], download: `/ui/runs/${encodeURIComponent(run.id)}/output`, empty: stdout.trim() === '' }
  const parsed = parsedOf(run)
  if (parser === 'dmesg' && Array.isArray(parsed) && parsed.length > 0) {
    const k = kernelLines(parsed as Array<Record<string, unknown>>, KERNEL_LINES[where])
    return { ...base, kind: 'kernel', lines: k.lines, note: `${k.cut > 0 ? `The last ${n(k.lines.length)} of ${n(parsed.length)} kernel records.` : ''}${capped}`.trim() }
  }
  if (parser === 'dmesg' || parser === 'lines') {
    const t = tail(stdout, max)
    const lines = stdout.split('\n').filter((l) => l !== '').length
    return { ...base, kind: 'log', text: t.text, note: `${t.cut ? `The last ${n(t.text.split('\n').length)} of ${n(lines)} lines.` : ''}${capped}`.trim() }
  }
  const json = jsonText(run)
  if (json !== undefined) {
    const cut = json.length > max
    return { ...base, kind: 'json', text: cut ? json.slice(0, max) : json, note: `${cut ? `The first ${n(max)} of ${n(json.length)} characters.` : ''}${capped}`.trim() }
  }
  const cut = stdout.length > max
  return { ...base, kind: 'text', text: cut ? stdout.slice(0, max) : stdout, note: `${cut ? `The first ${n(max)} of ${n(stdout.length)} characters.` : ''}${capped}`.trim() }
}
