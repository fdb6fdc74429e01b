/**
 * Argument validation against an action's declared contract. Runs in the
 * control plane (before policy) and again in the runner (before execution);
 * both must reach the same verdict, so everything here is pure.
 */
import { posix } from 'node:path'
import type { ArgSpec } from './pack-schema.js'
import { parseDuration } from './duration.js'
import { compilePackRegex } from './pack-schema.js'
import { findUnsafeCharacter } from './unsafe-characters.js'

export type ArgValue = string | number | boolean | string[] | number[]
export type ValidatedArgs = Record<string, ArgValue>

export type ArgErrorCode =
  | 'not_an_object' | 'unknown_arg' | 'missing' | 'type' | 'pattern' | 'enum' | 'min' | 'max'
  | 'max_length' | 'max_items' | 'control_chars' | 'prefix' | 'denied_path' | 'duration'
  | 'looks_like_flag' | 'dot_segment' | 'path_escape'

export interface ArgError {
  /** The argument's name, or `""` for the arguments object itself. */
  arg: string
  code: ArgErrorCode
  message: string
}

export type ArgResult = { ok: true, args: ValidatedArgs } | { ok: false, errors: ArgError[] }

const anchoredCache = new Map<string, RegExp>()
function anchored(pattern: string): RegExp {
  let re = anchoredCache.get(pattern)
  if (!re) {
    // The whole value must match, whether or not the pack author anchored the
    // pattern; lookarounds, unlike ^ and $, mean the value's ends even under
    // an inline (?m).
    const inner = compilePackRegex(pattern)
    re = new RegExp(`(?<![\\s\\S])(?:${inner.source})(?![\\s\\S])`, inner.flags)
    anchoredCache.set(pattern, re)
  }
  return re
}

/**
 * Validates `input` against `specs`: unknown arguments are refused, defaults
 * filled in, values coerced only from unambiguous strings (`"42"` for an
 * integer, `"true"` for a boolean) so CLI and MCP callers can pass text.
 */
export function validateArgs(specs: readonly ArgSpec[], input: unknown): ArgResult {
  if (input === undefined || input === null) input = {}
  if (typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ arg: '', code: 'not_an_object', message: 'arguments must be a JSON object' }] }
  }
  const errors: ArgError[] = []
  const given = input as Record<string, unknown>
  const byName = new Map(specs.map((s) => [s.name, s]))
  for (const key of Object.keys(given)) {
    if (!byName.has(key)) errors.push({ arg: key, code: 'unknown_arg', message: `unknown argument "${printable(key)}"; declared: ${specs.map((s) => s.name).join(', ') || '(none)'}` })
  }
  const out: ValidatedArgs = Object.create(null)
  for (const spec of specs) {
    const raw = Object.hasOwn(given, spec.name) ? given[spec.name] : undefined
    if (raw === undefined || raw === null) {
      if (spec.default !== undefined && spec.default !== null) {
        const d = checkValue(spec, spec.default, errors, true)
        if (d !== undefined) out[spec.name] = d
      } else if (spec.required) {
        errors.push({ arg: spec.name, code: 'missing', message: `argument "${spec.name}" is required` })
      }
      continue
    }
    const v = checkValue(spec, raw, errors, false)
    if (v !== undefined) out[spec.name] = v
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, args: out }
}

function checkValue(spec: ArgSpec, raw: unknown, errors: ArgError[], isDefault: boolean): ArgValue | undefined {
  const fail = (code: ArgErrorCode, message: string): undefined => {
    errors.push({ arg: spec.name, code, message: `argument "${spec.name}"${isDefault ? ' (declared default)' : ''}: ${message}` })
    return undefined
  }
  const shown = valueShown(spec)
  switch (spec.type) {
    case 'string_array':
    case 'integer_array': {
      if (!Array.isArray(raw)) return fail('type', `expected an array, got ${shown(typeName(raw))}`)
      const max = spec.validation?.max_items
      if (max !== undefined && raw.length > max) return fail('max_items', `at most ${max} items, got ${raw.length}`)
      const itemType = spec.type === 'string_array' ? 'string' : 'integer'
      const items: (string | number)[] = []
      const before = errors.length
      raw.forEach((item, i) => {
        const v = checkScalar({ ...spec, name: `${spec.name}[${i}]`, type: itemType }, item, errors, isDefault)
        if (v !== undefined) items.push(v as string | number)
      })
      if (errors.length > before) return undefined
      return items as string[] | number[]
    }
    default:
      return checkScalar(spec, raw, errors, isDefault)
  }
}

function checkScalar(spec: ArgSpec, raw: unknown, errors: ArgError[], isDefault: boolean): string | number | boolean | undefined {
  const fail = (code: ArgErrorCode, message: string): undefined => {
    errors.push({ arg: spec.name, code, message: `argument "${spec.name}"${isDefault ? ' (declared default)' : ''}: ${message}` })
    return undefined
  }
  const shown = valueShown(spec)
  const v = spec.validation ?? {}
  if (spec.type === 'integer' || spec.type === 'number') {
    let n: number
    if (typeof raw === 'number') n = raw
    else if (typeof raw === 'string' && (spec.type === 'integer' ? /^-?\d{1,15}$/ : /^-?\d{1,15}(\.\d{1,15})?$/).test(raw)) n = Number(raw)
    else return fail('type', `expected ${spec.type === 'integer' ? 'an integer' : 'a number'}, got ${shown(typeName(raw))}`)
    if (!Number.isFinite(n) || (spec.type === 'integer' && !Number.isSafeInteger(n))) return fail('type', `expected ${spec.type === 'integer' ? 'an integer' : 'a number'}, got ${shown(String(n))}`)
    if (v.min !== undefined && n < v.min) return fail('min', `must be ≥ ${v.min}, got ${shown(String(n))}`)
    if (v.max !== undefined && n > v.max) return fail('max', `must be ≤ ${v.max}, got ${shown(String(n))}`)
    if (v.enum && !v.enum.includes(n)) return fail('enum', `must be one of ${v.enum.join(', ')}`)
    if (v.allowed && !v.allowed.includes(n)) return fail('enum', `must be one of ${v.allowed.join(', ')}`)
    return n
  }
  if (spec.type === 'boolean') {
    if (typeof raw === 'boolean') return raw
    if (raw === 'true' || raw === 'false') return raw === 'true'
    return fail('type', `expected a boolean, got ${shown(typeName(raw))}`)
  }
  // string, path, duration
  let s: string
  if (typeof raw === 'string') s = raw
  else if (typeof raw === 'number' && spec.type === 'string') s = String(raw)
  else return fail('type', `expected a string, got ${shown(typeName(raw))}`)
  // No value carries a second line past a pattern or into a command, nor reads differently from what it holds.
  const unsafe = findUnsafeCharacter(s)
  if (unsafe) {
    return fail('control_chars', `control and bidi characters (newlines, escapes, NUL, overrides) are not allowed, got ${shown(`${unsafe.label} at character ${unsafe.index}`)}`)
  }
  if (v.max_length !== undefined && s.length > v.max_length) return fail('max_length', `at most ${v.max_length} characters, got ${s.length}`)
  if (s.length > 65536) return fail('max_length', 'at most 65536 characters')
  if (v.pattern !== undefined && !anchored(v.pattern).test(s)) return fail('pattern', `does not match the declared pattern ${v.pattern}`)
  if (v.enum && !v.enum.includes(s)) return fail('enum', `must be one of ${v.enum.join(', ')}`)
  if (v.allowed && !v.allowed.includes(s)) return fail('enum', `must be one of ${v.allowed.join(', ')}`)
  if (spec.type === 'duration') {
    const ms = parseDuration(s)
    if (ms === undefined) return fail('duration', `expected a duration like "30s" or "5m", got ${shown(`"${printable(s)}"`)}`)
    const lo = v.min_duration !== undefined ? parseDuration(v.min_duration) : undefined
    const hi = v.max_duration !== undefined ? parseDuration(v.max_duration) : undefined
    if (lo !== undefined && ms < lo) return fail('min', `must be at least ${v.min_duration}`)
    if (hi !== undefined && ms > hi) return fail('max', `must be at most ${v.max_duration}`)
  }
  if (spec.type === 'path') {
    if (s.split('/').includes('..')) return fail('path_escape', '".." segments are not allowed')
    const norm = posix.normalize(s)
    if (v.denied_paths?.some((d) => norm === posix.normalize(d))) return fail('denied_path', `${shown(norm)} is denied by the pack`)
    if (v.denied_prefixes?.some((d) => norm === d.replace(/\/$/, '') || norm.startsWith(d.endsWith('/') ? d : `${d}/`))) return fail('prefix', `${shown(norm)} is under a denied prefix`)
    if (v.allowed_prefixes && !v.allowed_prefixes.some((d) => norm === d.replace(/\/$/, '') || norm.startsWith(d.endsWith('/') ? d : `${d}/`))) {
      return fail('prefix', `must be under one of ${v.allowed_prefixes.join(', ')}`)
    }
  } else {
    if (v.allowed_prefixes && !v.allowed_prefixes.some((p) => s.startsWith(p))) return fail('prefix', `must start with one of ${v.allowed_prefixes.join(', ')}`)
    if (v.denied_prefixes?.some((p) => s.startsWith(p))) return fail('prefix', 'starts with a denied prefix')
  }
  return s
}

/** What stands for the value of an argument declared sensitive, wherever it would be shown. */
export const REDACTED = '[redacted]'

/** How a value may appear in an error message: not at all when the argument is sensitive. */
function valueShown(spec: ArgSpec): (text: string) => string {
  return spec.sensitive ? () => REDACTED : (text) => text
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`
}

function printable(s: string): string {
  return JSON.stringify(s).slice(1, -1).slice(0, 80)
}
