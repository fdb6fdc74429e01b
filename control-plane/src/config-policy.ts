/**
 * Who may do what: principals (with their token hashes) and the policy rules,
 * inline in the config or in a policy file. Part of the config (config.ts).
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { parseDuration, RiskSchema } from '@writ/packs'

/** A configuration value that is wrong; the message names the setting. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ConfigError' }
}

export const Duration = z.string().refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration like "15s", "2m" or "500ms"' })
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 of the token as 64 lower-case hex characters')
export const Name = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'letters, digits, "_", ".", "@" and "-" only')

const budget = z.number({ error: 'expected a whole number, 0 or more' }).int('expected a whole number, 0 or more')
  .min(0, 'a budget cannot be below zero (0 lets nothing through)').max(1_000_000, 'at most 1000000')

/**
 * What one principal may spend, counted when a run is dispatched (refused,
 * pending and denied requests cost nothing), in clock-aligned windows.
 */
export const BudgetsSchema = z.object({
  /** Dispatched runs whose action changes state (side effects not declared None), per clock hour. */
  mutations_per_hour: budget.optional(),
  /** Distinct nodes those change-making runs went to, per clock hour. */
  nodes_per_hour: budget.optional(),
  /** Dispatched runs of any kind, reads included, per clock minute. */
  runs_per_minute: budget.optional(),
}).strict()
export type Budgets = z.infer<typeof BudgetsSchema>
/** Who may connect an MCP client as an agent principal through OAuth: people (operator ids or persons) and operator groups. */
export const PrincipalOAuthSchema = z.object({ people: z.array(Name).default([]), groups: z.array(Name).default([]) }).strict()

export const PrincipalConfigSchema = z.object({
  id: Name,
  kind: z.enum(['agent', 'operator']),
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. An operator who only signs in through single sign-on needs none. */
  token_sha256: Sha256Hex.optional(),
  /** Single sign-on: the value of `portal.oidc.operator_claim` (e.g. the email) that signs this operator in. */
  sso: z.string().min(1).max(320).optional(),
  groups: z.array(Name).default([]),
  /**
   * The person behind this principal. One person can hold an agent token and an
   * operator token; naming the same person on both keeps them from approving
   * their own runs. Defaults to the principal id.
   */
  person: Name.optional(),
  /** Requests per minute (agents); overrides `limits.rate_per_minute`. */
  rate_per_minute: z.number().int().positive().optional(),
  /** Dispatched runs this principal may spend (brakes/budget-ledger.ts); unset = no budget. */
  budgets: BudgetsSchema.optional(),
  /** Agents: the people and operator groups who may connect an MCP client as this agent through OAuth (config `oauth`). */
  oauth: PrincipalOAuthSchema.optional(),
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
    /** One of the approver groups may run it alone when the quorum cannot be reached (`POST /v1/runs/:id/break-glass`), leaving a review item. */
    break_glass: z.boolean().default(false),
  }).strict(),
  z.object({ name: z.string().min(1), match: PolicyMatchSchema.default({}), decision: z.literal('deny'), reason: z.string().min(1) }).strict(),
])
export type PolicyRule = z.infer<typeof PolicyRuleSchema>

export const PolicyFileSchema = z.object({ rules: z.array(PolicyRuleSchema) }).strict()

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

