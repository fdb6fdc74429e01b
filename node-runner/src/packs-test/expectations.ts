/**
 * Checking a case's `expect` against what came back: each unmet expectation
 * is one sentence saying what was expected and what was seen, so a failing
 * line in `packs test` is enough to start fixing the pack.
 */
import { isDeepStrictEqual } from 'node:util'
import type { RunExpect, StepExpect } from './case-file.js'

/** What a run or a plain command produced, in the terms cases speak. */
export interface Observed {
  /** A run's outcome: `success` is a run that succeeded, anything else (failed, refused, timed out) is `failure`. */
  status?: 'success' | 'failure'
  exitCode: number | null
  stdout: string
  stderr: string
  /** Why a run did not succeed: its error, or the runner's refusal. */
  reason?: string | undefined
  /** The runner's parsed output, when its parser produced one. */
  parsed?: unknown
}

/** A one-line excerpt of output for a failure line. */
export function excerpt(text: string, max = 160): string {
  const flat = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)
  return text === '' ? '(empty)' : flat
}

/**
 * The case's own expectations with the file's defaults: lists add up, a
 * case's scalar wins. Defaults describe a successful run, so a case that
 * expects a failure takes none of them.
 */
export function withDefaults(defaults: RunExpect | undefined, own: RunExpect | undefined): RunExpect {
  const mine = own ?? {}
  if (!defaults || mine.status === 'failure') return mine
  const lists = ['stdout_contains', 'stdout_not_contains', 'stderr_contains', 'reason_contains'] as const
  const merged: RunExpect = { ...defaults, ...mine }
  for (const k of lists) {
    const all = [...(defaults[k] ?? []), ...(mine[k] ?? [])]
    if (all.length > 0) merged[k] = all
  }
  if (defaults.json || mine.json) merged.json = { ...defaults.json, ...mine.json }
  return merged
}

/** Resolves an RFC 6901 pointer; `found: false` when any step is missing. */
export function jsonPointer(doc: unknown, pointer: string): { found: boolean, value?: unknown } {
  if (pointer === '') return { found: true, value: doc }
  let cur: unknown = doc
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(key) && Number(key) < cur.length) cur = cur[Number(key)]
    else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.hasOwn(cur, key)) cur = (cur as Record<string, unknown>)[key]
    else return { found: false }
  }
  return { found: true, value: cur }
}

/** The JSON a `json` expectation looks into: stdout read as JSON, else what the action's parser made of it. */
function jsonDocument(seen: Observed): { ok: true, doc: unknown } | { ok: false, why: string } {
  try { return { ok: true, doc: JSON.parse(seen.stdout) } } catch (e) {
    if (seen.parsed !== undefined) return { ok: true, doc: seen.parsed }
    return { ok: false, why: `stdout is not JSON (${(e as Error).message})` }
  }
}

/**
 * Every expectation `seen` does not meet, as sentences; empty when all hold.
 * Without `status`, a run is expected to succeed; without `exit`, a plain
 * command is expected to exit 0.
 */
export function unmet(expect: RunExpect | StepExpect | undefined, seen: Observed): string[] {
  const e: RunExpect = expect ?? {}
  const out: string[] = []
  if (seen.status !== undefined) {
    const want = e.status ?? 'success'
    if (seen.status !== want) out.push(`expected ${want}, got ${seen.status}${seen.reason ? ` (${seen.reason})` : ''}`)
  } else if (e.exit === undefined && seen.exitCode !== 0) {
    out.push(`expected exit 0, got ${seen.exitCode === null ? 'no exit code' : `exit ${seen.exitCode}`}`)
  }
  if (e.exit !== undefined && (seen.exitCode === null || !e.exit.includes(seen.exitCode))) {
    out.push(`expected exit code ${e.exit.join(' or ')}, got ${seen.exitCode === null ? 'none (no process ran to an exit)' : seen.exitCode}`)
  }
  for (const s of e.reason_contains ?? []) if (!(seen.reason ?? '').includes(s)) out.push(`expected the reason to contain ${JSON.stringify(s)}, got ${excerpt(seen.reason ?? '')}`)
  for (const s of e.stdout_contains ?? []) if (!seen.stdout.includes(s)) out.push(`expected stdout to contain ${JSON.stringify(s)}, got ${excerpt(seen.stdout)}`)
  for (const s of e.stdout_not_contains ?? []) if (seen.stdout.includes(s)) out.push(`expected stdout not to contain ${JSON.stringify(s)}, got ${excerpt(seen.stdout)}`)
  for (const s of e.stderr_contains ?? []) if (!seen.stderr.includes(s)) out.push(`expected stderr to contain ${JSON.stringify(s)}, got ${excerpt(seen.stderr)}`)
  if (e.stdout_not_empty === true && seen.stdout.trim() === '') out.push('expected stdout not to be empty, got (empty)')
  if (e.json && Object.keys(e.json).length > 0) {
    const doc = jsonDocument(seen)
    if (!doc.ok) out.push(`expected JSON output: ${doc.why}`)
    else {
      for (const [pointer, want] of Object.entries(e.json)) {
        const got = jsonPointer(doc.doc, pointer)
        if (!got.found) out.push(`expected JSON at ${pointer} to be ${JSON.stringify(want)}, found nothing there`)
        else if (!isDeepStrictEqual(got.value, want)) out.push(`expected JSON at ${pointer} to be ${JSON.stringify(want)}, got ${JSON.stringify(got.value)}`)
      }
    }
  }
  return out
}
