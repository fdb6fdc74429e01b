/**
 * Control-plane configuration: one YAML file validated by zod, then `WRIT_*`
 * environment overrides. A bad value fails at boot with the setting's path.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { parseDuration, RiskSchema } from '@writ/packs'

const Duration = z.string().refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration like "15s", "2m" or "500ms"' })
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 of the token as 64 lower-case hex characters')
const Name = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'letters, digits, "_", ".", "@" and "-" only')

export const PrincipalConfigSchema = z.object({
  id: Name,
  kind: z.enum(['agent', 'operator']),
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. */
  token_sha256: Sha256Hex,
  groups: z.array(Name).default([]),
  /** Requests per minute (agents); overrides `limits.rate_per_minute`. */
  rate_per_minute: z.number().int().positive().optional(),
}).strict()
export type PrincipalConfig = z.infer<typeof PrincipalConfigSchema>

export const PolicyMatchSchema = z.object({
  actions: z.array(z.string().min(1)).optional(),
  risk: z.array(RiskSchema).optional(),
  max_risk: RiskSchema.optional(),
  nodes: z.array(z.string().min(1)).optional(),
  node_pools: z.array(z.string().min(1)).optional(),
  datacenters: z.array(z.string().min(1)).optional(),
  node_classes: z.array(z.string().min(1)).optional(),
  principals: z.array(z.string().min(1)).optional(),
  groups: z.array(z.string().min(1)).optional(),
  kinds: z.array(z.enum(['agent', 'operator'])).optional(),
}).strict()
export type PolicyMatch = z.infer<typeof PolicyMatchSchema>

export const PolicyRuleSchema = z.discriminatedUnion('decision', [
  z.object({ name: z.string().min(1), match: PolicyMatchSchema.default({}), decision: z.literal('allow') }).strict(),
  z.object({
    name: z.string().min(1), match: PolicyMatchSchema.default({}), decision: z.literal('require_approval'),
    approver_groups: z.array(Name).min(1), quorum: z.number().int().min(1).max(16).default(1), ttl: Duration.default('15m'),
  }).strict(),
  z.object({ name: z.string().min(1), match: PolicyMatchSchema.default({}), decision: z.literal('deny'), reason: z.string().min(1) }).strict(),
])
export type PolicyRule = z.infer<typeof PolicyRuleSchema>

export const PolicyFileSchema = z.object({ rules: z.array(PolicyRuleSchema) }).strict()

export const ConfigSchema = z.object({
  listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(8480) }).strict().default({ host: '127.0.0.1', port: 8480 }),
  /** The URL this control plane is reached at (links, CLI hints). */
  public_url: z.string().url().optional(),
  instance_id: Name.optional(),
  nats: z.object({
    servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']),
    name: z.string().default('writ-control-plane'),
    user: z.string().optional(),
    pass: z.string().optional(),
    token: z.string().optional(),
    creds_file: z.string().optional(),
  }).strict().default({ servers: ['nats://127.0.0.1:4222'], name: 'writ-control-plane' }),
  jetstream: z.object({
    /** Stream and bucket replicas: 1 in development, 3 on a production cluster. */
    replicas: z.number().int().min(1).max(5).default(1),
    audit_max_age: Duration.optional(),
    results_max_age: Duration.default('168h'),
  }).strict().default({ replicas: 1, results_max_age: '168h' }),
  packs: z.object({ dirs: z.array(z.string().min(1)).min(1, 'at least one pack directory is needed') }).strict(),
  signing: z.object({ key_file: z.string().min(1) }).strict(),
  principals: z.array(PrincipalConfigSchema).default([]),
  policy: z.object({ file: z.string().optional(), rules: z.array(PolicyRuleSchema).default([]) }).strict().default({ rules: [] }),
  fleet: z.object({
    /** A node is offline after this many heartbeat intervals without one. */
    offline_after_missed: z.number().int().min(1).max(100).default(3),
  }).strict().default({ offline_after_missed: 3 }),
  runs: z.object({
    writ_ttl: Duration.default('60s'),
    ack_timeout: Duration.default('5s'),
    /** Added to an action's timeout before a run without a result is `lost`. */
    lost_grace: Duration.default('30s'),
    sweep_interval: Duration.default('1s'),
    max_wait: Duration.default('60s'),
  }).strict().default({ writ_ttl: '60s', ack_timeout: '5s', lost_grace: '30s', sweep_interval: '1s', max_wait: '60s' }),
  limits: z.object({
    body_bytes: z.number().int().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
    rate_per_minute: z.number().int().positive().default(600),
  }).strict().default({ body_bytes: 64 * 1024, rate_per_minute: 600 }),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
}).strict()
export type Config = z.infer<typeof ConfigSchema>
export type ConfigInput = z.input<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ConfigError' }
}

/** Validates a config object; the error names every bad setting by its dotted path. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const parsed = ConfigSchema.safeParse(input)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`)
    throw new ConfigError(`invalid ${source}: ${lines.join('; ')}`)
  }
  const ids = new Set<string>()
  parsed.data.principals.forEach((p, i) => {
    if (ids.has(p.id)) throw new ConfigError(`invalid ${source}: principals.${i}.id: "${p.id}" is declared twice`)
    ids.add(p.id)
  })
  return parsed.data
}

const ENV_OVERRIDES: Array<[string, (raw: Record<string, any>, v: string) => void]> = [
  ['WRIT_NATS_URL', (r, v) => { (r.nats ??= {}).servers = v.split(',').map((s) => s.trim()).filter(Boolean) }],
  ['WRIT_LISTEN_HOST', (r, v) => { (r.listen ??= {}).host = v }],
  ['WRIT_LISTEN_PORT', (r, v) => { (r.listen ??= {}).port = Number(v) }],
  ['WRIT_PUBLIC_URL', (r, v) => { r.public_url = v }],
  ['WRIT_INSTANCE_ID', (r, v) => { r.instance_id = v }],
  ['WRIT_SIGNING_KEY_FILE', (r, v) => { (r.signing ??= {}).key_file = v }],
  ['WRIT_PACK_DIRS', (r, v) => { (r.packs ??= {}).dirs = v.split(':').filter(Boolean) }],
  ['WRIT_JS_REPLICAS', (r, v) => { (r.jetstream ??= {}).replicas = Number(v) }],
  ['WRIT_LOG_LEVEL', (r, v) => { (r.log ??= {}).level = v }],
]

/** Applies `WRIT_*` overrides to a raw (unvalidated) config object. */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw) as Record<string, any>
  for (const [name, apply] of ENV_OVERRIDES) {
    const v = env[name]
    if (v !== undefined && v !== '') apply(out, v)
  }
  return out
}

/**
 * Reads the YAML file, applies env overrides, validates, and resolves relative
 * paths (pack dirs, key file, policy file) against the file's folder.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown
  try { raw = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true }) ?? {} } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`, { cause: e })
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${file}: expected a YAML mapping at the top level`)
  const config = parseConfig(applyEnvOverrides(raw as Record<string, unknown>, env), `config file ${file}`)
  const base = dirname(resolve(file))
  config.packs.dirs = config.packs.dirs.map((d) => resolve(base, d))
  config.signing.key_file = resolve(base, config.signing.key_file)
  if (config.policy.file) {
    config.policy.file = resolve(base, config.policy.file)
    config.policy.rules = [...config.policy.rules, ...loadPolicyFile(config.policy.file)]
  }
  return config
}

/** A policy file holds `rules:`, evaluated after any inline rules. */
export function loadPolicyFile(file: string): z.infer<typeof PolicyRuleSchema>[] {
  let raw: unknown
  try { raw = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true }) } catch (e) {
    throw new ConfigError(`cannot read policy file ${file}: ${(e as Error).message}`, { cause: e })
  }
  const parsed = PolicyFileSchema.safeParse(raw)
  if (!parsed.success) {
    throw new ConfigError(`invalid policy file ${file}: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}`)
  }
  return parsed.data.rules
}

export function durationMs(text: string): number {
  return parseDuration(text) as number
}
