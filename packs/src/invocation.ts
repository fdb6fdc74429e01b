/**
 * Turns a declared action plus validated arguments into the exact invocation a
 * runner performs. An argument only ever becomes a whole argv element (or part
 * of one element, never a new one), an environment value, or an encoded URL
 * part — it is never parsed by a shell of ours.
 */
import { posix } from 'node:path'
import type { ActionFile, HttpTarget, RunnerDirs } from './pack-schema.js'
import { RUNNER_DIR_RE, TEMPLATE_RE } from './pack-schema.js'
import type { ArgError, ArgResult, ArgValue, ValidatedArgs } from './arg-validation.js'
import { validateArgs } from './arg-validation.js'
import { parseDuration } from './duration.js'

export type Invocation =
  | { kind: 'exec', binary: string, argv: string[], env: Record<string, string>, cwd?: string }
  | { kind: 'script', interpreter: string, script: string, argv: string[], env: Record<string, string>, cwd?: string }
  | { kind: 'http', target: HttpTarget, method: string, path: string, body?: unknown, stream: 'json' | 'text' | 'docker-multiplexed' }
  /** `root` as the pack declares it; a runner resolves a `{{ runner.<dir> }}` start with resolveListRoot before listing. */
  | { kind: 'list', root: string, relPath: string, maxEntries: number, maxDepth: number }

export type InvocationResult = { ok: true, args: ValidatedArgs, invocation: Invocation } | { ok: false, errors: ArgError[] }

const WHOLE_TEMPLATE = /^\{\{\s*args\.([a-z][a-z0-9_]*)\??\s*(?:\|\s*([a-z_]+)\s*)?\}\}$/
const LEADING_TEMPLATE = /^\{\{\s*args\.([a-z][a-z0-9_]*)/

/**
 * Validates `input` and renders the invocation. `packDir` resolves a script's
 * path. Both daemons call this, so a contract is enforced identically on each.
 */
export function prepareInvocation(action: ActionFile, input: unknown, packDir = '.'): InvocationResult {
  const checked: ArgResult = validateArgs(action.args, input)
  if (!checked.ok) return checked
  const args = checked.args
  const errors: ArgError[] = []
  let invocation: Invocation
  switch (action.kind) {
    case 'exec': {
      const e = action.execution
      invocation = { kind: 'exec', binary: e.command.binary, argv: renderArgv(e.command.argv, args, errors, true), env: renderEnv(e.env, args), ...(e.cwd ? { cwd: e.cwd } : {}) }
      break
    }
    case 'script': {
      const e = action.execution
      invocation = {
        kind: 'script', interpreter: e.script.interpreter, script: posix.resolve(packDir, e.script.path),
        argv: renderArgv(e.argv, args, errors, false), env: renderEnv(e.env, args), ...(e.cwd ? { cwd: e.cwd } : {}),
      }
      break
    }
    case 'http': {
      const h = action.execution.http
      const path = renderUrlPath(h.path, args, errors)
      const query = new URLSearchParams()
      for (const [k, t] of Object.entries(h.query ?? {})) {
        const v = substitute(t, args)
        if (v !== undefined) query.append(k, v)
      }
      const qs = query.toString()
      invocation = { kind: 'http', target: h.target, method: h.method, path: qs ? `${path}?${qs}` : path, stream: h.stream, ...(h.body !== undefined ? { body: renderBody(h.body, args) } : {}) }
      break
    }
    case 'list': {
      const l = action.execution.list
      const rel = substitute(l.path, args) ?? ''
      if (rel.startsWith('/') || rel.split('/').includes('..')) {
        errors.push({ arg: templateNames(l.path)[0] ?? '', code: 'path_escape', message: `path "${rel}" must stay inside ${l.root}: no leading "/" and no ".." segments` })
      }
      invocation = { kind: 'list', root: l.root, relPath: posix.normalize(rel || '.'), maxEntries: l.max_entries, maxDepth: l.max_depth }
      break
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, args, invocation }
}

/**
 * A list root as this runner lists it: `{{ runner.<dir> }}` replaced by the
 * runner's own setting (an absolute, normalised path from its configuration,
 * never from a writ). The pack loader has already refused unknown names, ".."
 * and a second template, so the result names one fixed directory.
 */
export function resolveListRoot(root: string, dirs: RunnerDirs): { ok: true, root: string } | { ok: false, message: string } {
  const m = RUNNER_DIR_RE.exec(root)
  if (!m) return { ok: true, root }
  const dir = dirs[m[1] as keyof RunnerDirs]
  if (dir === undefined || !dir.startsWith('/')) return { ok: false, message: `the list root ${root} needs this runner's ${m[1]} setting, which it does not have` }
  return { ok: true, root: posix.normalize(`${dir}/${m[2] as string}`).replace(/(.)\/+$/, '$1') }
}

/** Every `{{ args.x }}` name used in a template string. */
export function templateNames(template: string): string[] {
  return [...template.matchAll(TEMPLATE_RE)].map((m) => m[1] as string)
}

function stringify(v: ArgValue): string {
  return Array.isArray(v) ? v.join(',') : String(v)
}

function applyFilter(v: ArgValue | undefined, filter: string | undefined): ArgValue | undefined {
  if (v === undefined || filter === undefined) return v
  if (filter === 'duration_ns') {
    const ms = typeof v === 'string' ? parseDuration(v) : undefined
    return ms === undefined ? undefined : ms * 1_000_000
  }
  return v
}

/** Substitutes every template in one string; undefined when any named argument is absent. */
function substitute(template: string, args: ValidatedArgs): string | undefined {
  let missing = false
  const out = template.replace(TEMPLATE_RE, (_m, name: string, filter?: string) => {
    const v = applyFilter(args[name], filter)
    if (v === undefined) { missing = true; return '' }
    return stringify(v)
  })
  return missing ? undefined : out
}

/**
 * `guardFlags`: for a binary of the pack's choosing (exec), an element that
 * begins with an argument would be read as an option if the value began with
 * "-" (`"{{ args.a }}"`, `"{{ args.a }}:rw"`, a negative number alike), so it
 * is refused unless a literal "--" came first. A pack script (kind script)
 * parses its own argv.
 */
function renderArgv(templates: readonly string[], args: ValidatedArgs, errors: ArgError[], guardFlags: boolean): string[] {
  const argv: string[] = []
  let afterDoubleDash = false
  for (const t of templates) {
    const guarded = guardFlags && !afterDoubleDash
    const whole = WHOLE_TEMPLATE.exec(t)
    if (whole) {
      const name = whole[1] as string
      const v = args[name]
      if (v === undefined) continue
      const values = Array.isArray(v) ? v.map(String) : [String(v)]
      if (guarded && values.some((x) => x.startsWith('-'))) { errors.push(flagError(name)); continue }
      argv.push(...values)
      continue
    }
    if (t === '--') afterDoubleDash = true
    const s = substitute(t, args)
    if (s === undefined) continue
    const leading = LEADING_TEMPLATE.exec(t)
    if (guarded && leading && s.startsWith('-')) { errors.push(flagError(leading[1] as string)); continue }
    argv.push(s)
  }
  return argv
}

function flagError(name: string): ArgError {
  return { arg: name, code: 'looks_like_flag', message: `argument "${name}" may not start with "-" (it would be read as an option)` }
}

function renderEnv(env: Record<string, string> | undefined, args: ValidatedArgs): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, t] of Object.entries(env ?? {})) {
    const v = substitute(t, args)
    if (v !== undefined) out[k] = v
  }
  return out
}

function renderUrlPath(template: string, args: ValidatedArgs, errors: ArgError[]): string {
  return template.replace(TEMPLATE_RE, (_m, name: string) => {
    const v = args[name]
    if (v === undefined) {
      errors.push({ arg: name, code: 'missing', message: `argument "${name}" is needed for the request path` })
      return ''
    }
    const s = stringify(v)
    if (s === '' || s === '.' || s === '..') {
      errors.push({ arg: name, code: 'dot_segment', message: `argument "${name}" cannot be "${s}" in a URL path` })
      return ''
    }
    return encodeURIComponent(s)
  })
}

function renderBody(body: unknown, args: ValidatedArgs): unknown {
  if (typeof body === 'string') {
    const whole = WHOLE_TEMPLATE.exec(body)
    if (whole) return applyFilter(args[whole[1] as string], whole[2])
    return substitute(body, args)
  }
  if (Array.isArray(body)) return body.map((b) => renderBody(b, args)).filter((b) => b !== undefined)
  if (body !== null && typeof body === 'object') {
    const out: Record<string, unknown> = Object.create(null)
    for (const [k, v] of Object.entries(body)) {
      const r = renderBody(v, args)
      if (r !== undefined) out[k] = r
    }
    return out
  }
  return body
}
