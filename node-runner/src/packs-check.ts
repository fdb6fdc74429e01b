/**
 * `writ-node-runner packs check <dir>...`: validates pack folders for authors.
 * Prints every error with its file and field, a summary line, and exits
 * non-zero on any failure.
 */
import { relative } from 'node:path'
import { loadPacks, type LoadResult } from '@writ/packs'

export function formatPacksCheck(result: LoadResult, cwd = process.cwd()): { lines: string[], exitCode: number } {
  const lines: string[] = []
  for (const e of result.errors) {
    const where = e.field ? `${relative(cwd, e.file) || e.file}: ${e.field}` : relative(cwd, e.file) || e.file
    lines.push(`error: ${where}: ${e.message}`)
  }
  const shell = result.packs.flatMap((p) => [...p.actions.values()].filter((a) => a.usesShell))
  for (const a of shell) lines.push(`shell: ${a.id} (${relative(cwd, a.file) || a.file}): ${a.shellReasons.join('; ')}`)
  if (shell.length > 0) lines.push(`note: ${shell.length} shell action(s) (a shell, an interpreter or a pack script, directly or behind a wrapper); runners refuse them unless allowShellPacks is on`)
  const c = result.counts
  lines.push(`packs: ${c.packsLoaded} loaded, ${c.packsFailed} failed; actions: ${c.actionsLoaded} loaded, ${c.actionsFailed} failed`)
  return { lines, exitCode: result.errors.length > 0 ? 1 : 0 }
}

export function runPacksCheck(dirs: readonly string[]): number {
  if (dirs.length === 0) {
    process.stderr.write('usage: writ-node-runner packs check <pack-dir>...\n')
    return 2
  }
  const { lines, exitCode } = formatPacksCheck(loadPacks(dirs))
  process.stdout.write(`${lines.join('\n')}\n`)
  return exitCode
}
