/**
 * Arguments an action declares `sensitive` (passwords, tokens): the runner
 * needs their values, so the run record keeps them, but nothing a person or
 * an agent reads back does — the audit chain, API replies and CLI output show
 * `[redacted]`.
 */
import { REDACTED, type PackCatalog } from '@writ/packs'
import type { Run } from './run-record.js'

/** The names of the arguments `actionId` declares sensitive (empty for an unknown action). */
export function sensitiveArgNames(catalog: PackCatalog, actionId: string): ReadonlySet<string> {
  const hit = catalog.lookup(actionId)
  if (!hit.ok) return EMPTY
  // Every reply goes through here: worked out once per loaded action.
  let names = byAction.get(hit.action)
  if (!names) byAction.set(hit.action, names = new Set(hit.action.spec.args.filter((a) => a.sensitive).map((a) => a.name)))
  return names
}
const EMPTY: ReadonlySet<string> = new Set()
const byAction = new WeakMap<object, ReadonlySet<string>>()

/** `args` with every sensitive value replaced by `[redacted]`; the same object when there is none. */
export function redactArgs<T extends Record<string, unknown>>(args: T, sensitive: ReadonlySet<string>): T {
  if (sensitive.size === 0 || !Object.keys(args).some((k) => sensitive.has(k))) return args
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, sensitive.has(k) ? REDACTED : v])) as T
}

/** The run as shown to a caller: the same object unless it holds a sensitive argument. */
export function presentRun(run: Run, catalog: PackCatalog): Run {
  const args = redactArgs(run.args, sensitiveArgNames(catalog, run.action))
  return args === run.args ? run : { ...run, args }
}
