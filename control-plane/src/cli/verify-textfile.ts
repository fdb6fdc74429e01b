/**
 * What a scheduled `writ audit verify --metrics-textfile FILE` leaves for
 * node_exporter's textfile collector: when it last finished and whether the
 * chain was intact, so an alert notices both a broken chain and a schedule
 * that stopped. Written to a temporary file and renamed, so the collector
 * never reads half a file; no timestamps (the collector refuses them).
 */
import { renameSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { UsageError } from './cli-io.js'

/** The textfile collector reads only `*.prom`: any other name would be silently ignored. */
export function checkTextfileName(file: string): string {
  if (!file.endsWith('.prom') || basename(file) === '.prom') {
    throw new UsageError(`--metrics-textfile ${file}: node_exporter's textfile collector reads only files named *.prom`)
  }
  return file
}

/** Writes the result of one verification; `ok` false for a broken chain and for a verification that could not run. */
export function writeVerifyTextfile(file: string, ok: boolean, finishedAt: Date = new Date()): void {
  const text = [
    '# HELP writ_audit_verify_last_run_timestamp_seconds Unix time the last `writ audit verify` with this file finished.',
    '# TYPE writ_audit_verify_last_run_timestamp_seconds gauge',
    `writ_audit_verify_last_run_timestamp_seconds ${Math.round(finishedAt.getTime() / 1000)}`,
    '# HELP writ_audit_verify_success 1 if that verification found the audit chain intact, 0 if it found it broken or could not check it.',
    '# TYPE writ_audit_verify_success gauge',
    `writ_audit_verify_success ${ok ? 1 : 0}`,
    '',
  ].join('\n')
  // A dot name in the same directory: the collector skips it, and rename() is atomic on one filesystem.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  writeFileSync(tmp, text, { mode: 0o644 })
  renameSync(tmp, file)
}
