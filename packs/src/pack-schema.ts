/**
 * The pack format: zod schemas for `pack.yaml` and `actions/*.yaml`.
 *
 * Compatible with the public emisar format (`schema_version: 1`, `kind: exec|script`)
 * and extended with `kind: http` (Nomad / Docker Engine API) and `kind: list`
 * (a directory listing confined to a declared root).
 */
import { z } from 'zod'
import { parseDuration } from './duration.js'

export const RiskSchema = z.enum(['low', 'medium', 'high', 'critical'])
export type Risk = z.infer<typeof RiskSchema>
export const RISK_ORDER: Record<Risk, number> = { low: 0, medium: 1, high: 2, critical: 3 }

export const ArgTypeSchema = z.enum([
  'string', 'integer', 'number', 'boolean', 'path', 'duration', 'string_array', 'integer_array',
])
export type ArgType = z.infer<typeof ArgTypeSchema>

const DurationString = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'expected a duration like "15s", "2m", "500ms" or "1h"',
})

/**
 * Compiles a pack-supplied regular expression. Packs written for other runtimes
 * may open with inline flags (`(?im)…`), which JavaScript lacks: they become flags.
 */
export function compilePackRegex(pattern: string, extraFlags = ''): RegExp {
  const m = /^\(\?([imsx]+)\)/.exec(pattern)
  const body = m ? pattern.slice(m[0].length) : pattern
  const flags = [...new Set([...(m?.[1] ?? '').replace('x', ''), ...extraFlags])].join('')
  try { return new RegExp(body, `${flags}u`) } catch { return new RegExp(body, flags) }
}

const RegexString = z.string().refine((s) => {
  try { compilePackRegex(s); return true } catch { return false }
}, { message: 'not a valid regular expression' })

export const ArgValidationSchema = z.object({
  pattern: RegexString.optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  enum: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).optional(),
  max_length: z.number().int().positive().optional(),
  max_items: z.number().int().positive().optional(),
  allowed: z.array(z.union([z.string(), z.number()])).optional(),
  allowed_prefixes: z.array(z.string()).optional(),
  denied_prefixes: z.array(z.string()).optional(),
  denied_paths: z.array(z.string()).optional(),
  min_duration: DurationString.optional(),
  max_duration: DurationString.optional(),
}).strict()
export type ArgValidation = z.infer<typeof ArgValidationSchema>

export const ArgSpecSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'arg names are lower_snake_case, at most 64 characters'),
  type: ArgTypeSchema,
  required: z.boolean().default(false),
  default: z.unknown().optional(),
  description: z.string().optional(),
  sensitive: z.boolean().optional(),
  validation: ArgValidationSchema.optional(),
}).strict()
export type ArgSpec = z.infer<typeof ArgSpecSchema>

/**
 * `{{ args.name }}` — the only template form, with one optional filter:
 * `{{ args.deadline | duration_ns }}` turns a duration into nanoseconds (Nomad's unit).
 */
export const TEMPLATE_RE = /\{\{\s*args\.([a-z][a-z0-9_]*)\??\s*(?:\|\s*([a-z_]+)\s*)?\}\}/g
export const TEMPLATE_FILTERS = ['duration_ns'] as const

const TemplateString = z.string().max(4096)

const CommonExecution = {
  timeout: DurationString,
  timeout_min: DurationString.optional(),
  timeout_max: DurationString.optional(),
  cancel_grace: DurationString.optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), TemplateString).optional(),
  cwd: z.string().optional(),
  success_exit_codes: z.array(z.number().int().min(0).max(255)).optional(),
}

export const ExecExecutionSchema = z.object({
  command: z.object({
    binary: z.string().min(1).max(4096),
    argv: z.array(TemplateString).default([]),
  }).strict(),
  ...CommonExecution,
}).strict()

export const ScriptExecutionSchema = z.object({
  script: z.object({
    path: z.string().min(1),
    interpreter: z.string().min(1),
  }).strict(),
  argv: z.array(TemplateString).default([]),
  ...CommonExecution,
}).strict()

export const HttpTargetSchema = z.enum(['nomad', 'docker'])
export type HttpTarget = z.infer<typeof HttpTargetSchema>

export const HttpExecutionSchema = z.object({
  http: z.object({
    target: HttpTargetSchema,
    method: z.enum(['GET', 'POST', 'PUT', 'DELETE']),
    /** Path template; every `{{ args.x }}` is URL-encoded as one path segment part. */
    path: z.string().startsWith('/').max(2048),
    /** Query parameters; a parameter whose template names an absent optional arg is left out. */
    query: z.record(z.string(), TemplateString).optional(),
    /** JSON body; string leaves that are exactly one template take the argument's typed value. */
    body: z.unknown().optional(),
    /** Docker only: the response is a multiplexed stdout/stderr log stream. */
    stream: z.enum(['json', 'text', 'docker-multiplexed']).default('json'),
  }).strict(),
  timeout: DurationString,
  timeout_min: DurationString.optional(),
  timeout_max: DurationString.optional(),
}).strict()

/**
 * Directories a runner knows about its own host, which a list action's root
 * may start with: `{{ runner.nomad_data_dir }}/client/csi`. Each runner fills
 * them in from its own configuration, never from a writ, so one pack (one
 * digest on every node) names "Nomad's data dir on this host" without
 * assuming where it is.
 */
export const RUNNER_DIRS = ['nomad_data_dir'] as const
export type RunnerDirName = typeof RUNNER_DIRS[number]
export type RunnerDirs = Partial<Record<RunnerDirName, string>>
/** `{{ runner.<dir> }}` at the start of a list root; [1] is the name, [2] the rest of the path. */
export const RUNNER_DIR_RE = /^\{\{\s*runner\.([a-z][a-z0-9_]*)\s*\}\}(.*)$/

export const ListExecutionSchema = z.object({
  list: z.object({
    /** Absolute directory the listing is confined to, or one under a runner directory (`{{ runner.nomad_data_dir }}/…`). */
    root: z.string().max(1024).refine((r) => r.startsWith('/') || RUNNER_DIR_RE.test(r), 'expected an absolute path, or {{ runner.<dir> }} and a path under it'),
    /** Relative path template under root; empty lists the root itself. */
    path: TemplateString.default(''),
    max_entries: z.number().int().positive().max(100_000).default(1000),
    max_depth: z.number().int().min(0).max(8).default(0),
  }).strict(),
  timeout: DurationString,
}).strict()

export const ParserSchema = z.enum(['text', 'lines', 'json', 'multipath', 'dmesg', 'raw'])
export type ParserName = z.infer<typeof ParserSchema>

export const OutputSchema = z.object({
  parser: ParserSchema.default('text'),
  parser_required: z.boolean().optional(),
  max_stdout_bytes: z.number().int().positive().max(64 * 1024 * 1024).default(65536),
  max_stderr_bytes: z.number().int().positive().max(16 * 1024 * 1024).default(16384),
  max_stdout_bytes_min: z.number().int().positive().optional(),
  max_stdout_bytes_max: z.number().int().positive().optional(),
  redact: z.array(z.object({
    name: z.string(),
    type: z.string().optional(),
    pattern: RegexString,
    replacement: z.string().default('[REDACTED]'),
  }).passthrough()).optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
}).strict()

const ConditionValue = z.union([z.string(), z.number(), z.boolean()])

/**
 * An argument condition: every named argument has the given value, or one of
 * the listed values (`{ no_shutdown_delay: true }`, `{ eligibility: [eligible] }`).
 * An argument that was not given (and has no default) matches nothing.
 */
export const ArgConditionSchema = z.record(z.string(), z.union([ConditionValue, z.array(ConditionValue).min(1)]))
  .refine((c) => Object.keys(c).length > 0, 'a condition names at least one argument')
export type ArgCondition = z.infer<typeof ArgConditionSchema>

/** A side effect: always, or only `when` the arguments say so ("kills at once" only with no_shutdown_delay). */
export const SideEffectSchema = z.union([z.string(), z.object({ effect: z.string().min(1), when: ArgConditionSchema }).strict()])
export type SideEffect = z.infer<typeof SideEffectSchema>

/**
 * The one line an approver reads first, over the run's arguments:
 * `"Mark {{ node }} {{ args.eligibility | upper }}"`, or a list of parts
 * joined together, each part a text or `{ text, when }`. Templates:
 * `{{ node }}` (the target node's name), `{{ action }}`, `{{ args.<name> }}`
 * with filters (SUMMARY_FILTERS). Every surface escapes the result.
 */
export const SummaryPartSchema = z.union([z.string().max(300), z.object({ text: z.string().max(300), when: ArgConditionSchema }).strict()])
export const SummarySchema = z.union([z.string().min(1).max(300), z.array(SummaryPartSchema).min(1).max(12)])
export type Summary = z.infer<typeof SummarySchema>
/**
 * Filters a summary template may apply, in order: `upper`, `lower`, `short`
 * (the first 8 characters, as Nomad shortens ids), `labelled` (appends the
 * name the control plane knows for the value, " (victoria-metrics.storage[0])").
 */
export const SUMMARY_FILTERS = ['upper', 'lower', 'short', 'labelled'] as const

const ExampleSchema = z.object({
  title: z.string(),
  args: z.record(z.string(), z.unknown()).default({}),
}).strict()

const ActionCommon = {
  schema_version: z.literal(1),
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_.-]*$/, 'action ids are "<prefix>.<action>": lower-case letters, digits, "_", "-"'),
  title: z.string().min(1),
  risk: RiskSchema,
  description: z.string().default(''),
  /** The concrete change in one line; without one, surfaces show the title and the arguments. */
  summary: SummarySchema.optional(),
  side_effects: z.array(SideEffectSchema).default([]),
  search_terms: z.array(z.string()).optional(),
  args: z.array(ArgSpecSchema).nullable().default([]).transform((a) => a ?? []),
  output: OutputSchema.default({ parser: 'text', max_stdout_bytes: 65536, max_stderr_bytes: 16384 }),
  examples: z.array(ExampleSchema).default([]),
}

export const ActionFileSchema = z.discriminatedUnion('kind', [
  z.object({ ...ActionCommon, kind: z.literal('exec'), execution: ExecExecutionSchema }).strict(),
  z.object({ ...ActionCommon, kind: z.literal('script'), execution: ScriptExecutionSchema }).strict(),
  z.object({ ...ActionCommon, kind: z.literal('http'), execution: HttpExecutionSchema }).strict(),
  z.object({ ...ActionCommon, kind: z.literal('list'), execution: ListExecutionSchema }).strict(),
])
export type ActionFile = z.infer<typeof ActionFileSchema>
export type ActionKind = ActionFile['kind']

export const PackManifestSchema = z.object({
  schema_version: z.literal(1),
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'pack ids are lower-case letters, digits, "-" and "_"'),
  name: z.string().min(1),
  version: z.string().min(1),
  retired_below: z.string().optional(),
  description: z.string().default(''),
  vendor: z.string().optional(),
  homepage: z.string().optional(),
  requires: z.record(z.string(), z.unknown()).optional(),
  setup: z.record(z.string(), z.unknown()).optional(),
  actions: z.array(z.string().regex(/^[A-Za-z0-9_./-]+\.ya?ml$/, 'action entries are relative .yaml paths')).min(1),
}).passthrough()
export type PackManifest = z.infer<typeof PackManifestSchema>
