/**
 * A pack's behaviour cases, `test/cases.yaml`: the format of the public emisar
 * catalog, read whole. Every key is known; an unknown one is an error naming
 * the file and the path to it, never ignored, so a misspelt `expect` cannot
 * turn a check into nothing.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { parseDuration } from '@writ/packs'

/**
 * An item of a list of texts. A YAML flow sequence reads `[paused:]` as a
 * one-key map `{paused: null}`; its author meant the text `paused:`, and so
 * does this reading. A number (`["1"]` written `[1]`) is its text too.
 */
const ListText = z.preprocess((v) => {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v)
    if (entries.length === 1 && entries[0]?.[1] === null) return `${entries[0][0]}:`
  }
  return v
}, z.string())
const Texts = z.array(ListText)

const Duration = z.string().refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration like "10s", "250ms" or "1m"' })
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name (letters, digits, "_")')
const Env = z.record(EnvName, z.string())
/** A JSON pointer (RFC 6901) into the output, and the value found there. */
const JsonExpect = z.record(z.string().regex(/^(\/.*)?$/, 'a JSON pointer: "" or "/key/0/…"'), z.unknown())

/** What a plain command (arrange, probe, cleanup) must print. */
export const StepExpectSchema = z.object({
  stdout_contains: Texts.optional(),
  stdout_not_contains: Texts.optional(),
  stderr_contains: Texts.optional(),
  stdout_not_empty: z.boolean().optional(),
  json: JsonExpect.optional(),
  exit: z.array(z.number().int().min(0).max(255)).min(1).optional(),
}).strict()
export type StepExpect = z.infer<typeof StepExpectSchema>

/** What the action's run must come back with; `status` defaults to `success`. */
export const RunExpectSchema = StepExpectSchema.extend({
  status: z.enum(['success', 'failure']).optional(),
  reason_contains: Texts.optional(),
}).strict()
export type RunExpect = z.infer<typeof RunExpectSchema>

/** A plain command run beside the action with the case's environment: no runner, no writ. */
export const CommandStepSchema = z.object({
  name: z.string().min(1).optional(),
  argv: z.array(z.string()).min(1),
  env: Env.optional(),
  expect: StepExpectSchema.optional(),
  /** Run again until it passes (exit 0 and `expect`), for at most this long. */
  retry_for: Duration.optional(),
  retry_every: Duration.optional(),
}).strict()
export type CommandStep = z.infer<typeof CommandStepSchema>

/** An argument whose value is what a command prints (a pid, an id), trimmed. */
export const ResolveArgSchema = z.object({
  argv: z.array(z.string()).min(1),
  env: Env.optional(),
  retry_for: Duration.optional(),
  retry_every: Duration.optional(),
}).strict()

export const CaseSchema = z.object({
  name: z.string().min(1).optional(),
  action: z.string().min(3),
  args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))])).optional(),
  env: Env.optional(),
  unset_env: z.array(EnvName).optional(),
  runner_user: z.string().min(1).optional(),
  runner_reason: z.string().optional(),
  arrange: z.array(CommandStepSchema).optional(),
  resolve_args: z.record(z.string(), ResolveArgSchema).optional(),
  expect: RunExpectSchema.optional(),
  probes: z.array(CommandStepSchema).optional(),
  cleanup: z.array(CommandStepSchema).optional(),
}).strict()
export type Case = z.infer<typeof CaseSchema>

export const CaseFileSchema = z.object({
  /** The services the cases talk to, by the host names their env uses (`PGHOST: postgres`). */
  services: z.array(z.string().min(1)).default([]),
  /** Image versions emisar's harness pins; packs test uses the host's packages and reports which. */
  versions: z.array(z.object({ version: z.string(), digest: z.string().optional(), default: z.boolean().optional() }).strict()).optional(),
  risk_accountability: z.object({
    /** `complete`: every high or critical action has a case or a declared reason. */
    mode: z.literal('complete').optional(),
    /** Actions without a case, each with why (`requires_cluster`, `requires_privileged_host`, …). */
    exceptions: z.record(z.string(), z.string()).optional(),
  }).strict().optional(),
  /** Variables whose values are canaries: any of them found in what the run leaves behind fails the case. */
  secret_env: z.array(EnvName).default([]),
  env: Env.default({}),
  defaults: z.object({ expect: RunExpectSchema.optional() }).strict().optional(),
  runner: z.object({ user: z.string().min(1), reason: z.string().optional() }).strict().optional(),
  /** emisar's harness parallelism; packs test runs cases one after another. */
  shards: z.number().int().positive().optional(),
  workers: z.number().int().positive().optional(),
  cases: z.array(CaseSchema).default([]),
}).strict()
export type CaseFile = z.infer<typeof CaseFileSchema>

export class CaseFileError extends Error {
  constructor(readonly file: string, readonly path: string, message: string) {
    super(`${file}: ${path ? `${path}: ` : ''}${message}`)
    this.name = 'CaseFileError'
  }
}

/** `cases[3].expect.stdout_contains[0]`: how a person finds the spot in the YAML. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('')
}

/** The file a pack's cases live in. */
export function caseFilePath(packDir: string): string {
  return join(packDir, 'test', 'cases.yaml')
}

/** Reads a pack's case file: undefined when the pack has none; CaseFileError for every way it can be wrong. */
export function loadCaseFile(packDir: string): CaseFile | undefined {
  const file = caseFilePath(packDir)
  if (!existsSync(file)) return undefined
  let raw: unknown
  try { raw = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true }) } catch (e) {
    throw new CaseFileError(file, '', `not valid YAML: ${(e as Error).message.split('\n')[0]}`)
  }
  const parsed = CaseFileSchema.safeParse(raw ?? {})
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const path = [...(issue?.path ?? [])]
    let message = issue?.message ?? 'invalid'
    if (issue?.code === 'unrecognized_keys') {
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      if (issue.keys.length === 1) path.push(issue.keys[0] as string)
    }
    throw new CaseFileError(file, pathText(path), message)
  }
  return parsed.data
}

/** A case's name in output and for `--case`: its own name, else its action's id. */
export function caseName(c: Case): string {
  return c.name ?? c.action
}
