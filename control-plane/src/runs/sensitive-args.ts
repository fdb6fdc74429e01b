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

/**
 * The run as shown to a caller: sensitive arguments redacted and without the
 * binding salt (which would let anyone test guesses of them against the
 * binding). The same object when there is neither.
 */
export function presentRun(run: Run, catalog: PackCatalog): Run {
  const args = redactArgs(run.args, sensitiveArgNames(catalog, run.action))
  if (args === run.args && run.binding_salt === undefined) return run
  const { binding_salt: _salt, ...shown } = run
  return { ...shown, args }
}

/**
 * The stored JSON of `run` without its binding salt: a reply can send the
 * record's bytes without serializing it again. Inside a JSON string a quote
 * is always escaped, so `"binding_salt":"<salt>"` can only be the member.
 */
export function withoutSalt(json: string, run: Pick<Run, 'binding_salt'>): string {
  if (run.binding_salt === undefined) return json
  const member = `"binding_salt":"${run.binding_salt}"`
  const at = json.indexOf(member)
  if (at < 0) return json
  // The member and the comma on one side of it.
  const end = at + member.length
  return json[end] === ',' ? json.slice(0, at) + json.slice(end + 1) : json.slice(0, at - 1) + json.slice(end)
}
