/**
 * Shapes of plans: the request (parsed once at the edge; the OpenAPI
 * document is generated from it), the frozen plan as stored, its changing
 * state, and the progress log entries (dispatches and results).
 */
import { z } from 'zod'
import { ArgValueSchema, PLAN_ID_RE, PlanStatementSchema, PrincipalRefSchema, RunOptionsSchema, SignedGrantSchema } from '@writ/packs/protocol'
import { RiskSchema } from '@writ/packs'
import { DecisionSchema, PolicyOutcomeSchema, RunStatusSchema } from '../runs/index.js'

const RunIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected a run id')
const Percent = (min: number) => z.string().regex(min === 0 ? /^(100|[1-9]?[0-9])%$/ : /^(100|[1-9][0-9]?)%$/, `a percentage from ${min}% to 100%, like "10%"`)
/** A count of targets, or a share of them ("25%"). */
const CountOrPercent = (min: number) => z.union([z.number().int().min(min).max(100_000), Percent(min)])

export const RolloutSchema = z.object({
  /** Targets per batch; a batch starts once the one before has finished. Default: every target in one batch. */
  batch: CountOrPercent(1).optional(),
  /** Targets of a batch in flight at once. Default: the whole batch. */
  max_concurrency: CountOrPercent(1).optional(),
  /** Failures the plan tolerates; one more and no new target is dispatched (the plan ends `halted`). Default: no limit. */
  max_errors: CountOrPercent(0).optional(),
  /** The first batch runs alone, then the rollout waits `pause` (a window to look and halt) before the next. */
  canary: z.boolean().default(false),
  pause: z.string().regex(/^([0-9]+(ms|s|m|h))$/, 'a duration like "30s", "5m"').optional(),
}).strict()
export type RolloutInput = z.infer<typeof RolloutSchema>

export const TargetsSchema = z.union([
  z.object({ nodes: z.array(z.string().min(1).max(256)).min(1).max(100_000).refine((n) => new Set(n).size === n.length, 'a node is named twice') }).strict(),
  z.object({ selector: z.string().trim().min(1).max(2000) }).strict(),
])

export const PlanRequestSchema = z.object({
  action: z.string().min(3).max(200),
  args: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().trim().min(1).max(2000),
  expected: z.string().trim().min(1).max(2000).optional(),
  evidence: z.array(RunIdSchema).max(20).refine((ids) => new Set(ids).size === ids.length, 'evidence lists a run twice').optional(),
  session_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).optional(),
  options: RunOptionsSchema.optional(),
  targets: TargetsSchema,
  rollout: RolloutSchema.optional(),
  /** Seconds to wait for the plan to finish before answering 202. */
  wait: z.number().min(0).max(3600).default(0),
}).strict()
export type PlanRequest = z.infer<typeof PlanRequestSchema>

/** The rollout with every share turned into a count for this plan's size. */
export const ResolvedRolloutSchema = z.object({
  batch: z.number().int().min(1), max_concurrency: z.number().int().min(1), max_errors: z.number().int().min(0).nullable(),
  canary: z.boolean(), pause_ms: z.number().int().min(0),
}).strict()
export type ResolvedRollout = z.infer<typeof ResolvedRolloutSchema>

export const PlanTargetSchema = z.object({
  node_id: z.string(), node_name: z.string(),
  /** Its own arguments (with `$target` bound): what its leaf covers. */
  args: z.record(z.string(), ArgValueSchema),
  policy: PolicyOutcomeSchema,
})
export type PlanTarget = z.infer<typeof PlanTargetSchema>

export const PlanApprovalSchema = z.object({
  binding: z.string(), approver_groups: z.array(z.string()), quorum: z.number().int().min(1), expires_at: z.string(),
  passkey_required: z.boolean().optional(), rule: z.string(),
})

/** The plan as frozen when it was made: written once, never changed. */
export const PlanSchema = z.object({
  id: z.string().regex(PLAN_ID_RE),
  action: z.string(), pack: z.string(), pack_digest: z.string(), risk: RiskSchema,
  reason: z.string(), expected: z.string().optional(), session_id: z.string().optional(), evidence: z.array(z.string()).optional(),
  requester: PrincipalRefSchema, requester_person: z.string().optional(),
  options: RunOptionsSchema.default({}),
  selector: z.string().optional(), nodes: z.array(z.string()).optional(),
  rollout: ResolvedRolloutSchema,
  /** The targets in rollout order: position i is leaf i. */
  targets: z.array(PlanTargetSchema),
  /** Named or selected, but not in the plan: denied by policy, offline, their attributes unknown, another pack digest. */
  excluded: z.array(z.object({ node: z.string(), reason: z.string() })),
  root: z.string(), list_digest: z.string(), salt: z.string(), request_hash: z.string(),
  approval: PlanApprovalSchema.optional(),
  /**
   * The standing grant that covered the plan's gated targets (one use each)
   * in place of a decision: their writs carry its signed statement.
   */
  grant: z.object({ id: z.string(), uses_left: z.number().int().nullable(), expires_at: z.string(), uses: z.number().int().min(1), signed: SignedGrantSchema }).optional(),
  created_at: z.string(), created_by_instance: z.string(),
})
export type Plan = z.infer<typeof PlanSchema>

export const PlanStatusSchema = z.enum(['pending_approval', 'running', 'succeeded', 'partially_failed', 'failed', 'halted', 'denied', 'expired'])
export type PlanStatus = z.infer<typeof PlanStatusSchema>
export const FINISHED_PLAN: ReadonlySet<PlanStatus> = new Set(['succeeded', 'partially_failed', 'failed', 'halted', 'denied', 'expired'])

/** What changes: status, decisions, who drives the rollout (a lease), a halt. Small, revision-checked. */
export const PlanStateSchema = z.object({
  id: z.string(),
  status: PlanStatusSchema,
  status_reason: z.string(),
  approvals: z.array(DecisionSchema).default([]),
  denial: DecisionSchema.extend({ reason: z.string() }).optional(),
  approved_at: z.string().optional(),
  /** The instance rolling the plan out, until when (renewed while it lives; another takes over after). */
  owner: z.object({ instance: z.string(), until: z.number() }).optional(),
  halt: z.object({ by: z.string(), reason: z.string(), at: z.string() }).optional(),
  finished_at: z.string().optional(),
  updated_at: z.string(),
  /** The impact preview of a sample of the gated targets (their read-only preview runs), once started. */
  preview: z.array(z.object({
    position: z.number().int().min(0), node: z.string(),
    runs: z.array(z.object({ action: z.string(), run_id: z.string() })), unavailable: z.string().optional(),
  })).optional(),
})
export type PlanState = z.infer<typeof PlanStateSchema>

/** A target's outcome as the progress log keeps it (its full output stays in WRIT_RESULTS). */
export const TargetResultSchema = z.object({
  p: z.number().int().min(0),
  status: RunStatusSchema,
  exit_code: z.number().int().nullable().optional(),
  output_sha256: z.string().optional(),
  duration_ms: z.number().optional(),
  /** Identical output (or parsed value), status and exit code: one group. */
  group: z.string(),
  /** The group's output as one example (capped); only on the first entry of a group an instance writes. */
  sample: z.string().optional(),
  reason: z.string().optional(),
  at: z.string(),
})
export type TargetResult = z.infer<typeof TargetResultSchema>

export const DispatchEntrySchema = z.object({
  kind: z.literal('dispatch'), positions: z.array(z.number().int().min(0)), at: z.string(), instance: z.string(),
  /** The signed statement these writs carry: a successor re-sends exactly these writs (same window), never new ones. */
  statement: PlanStatementSchema, sig: z.string(), key_id: z.string(),
}).strict()
export const ResultsEntrySchema = z.object({ kind: z.literal('results'), results: z.array(TargetResultSchema), instance: z.string() }).strict()
export const LogEntrySchema = z.discriminatedUnion('kind', [DispatchEntrySchema, ResultsEntrySchema])
export type DispatchEntry = z.infer<typeof DispatchEntrySchema>
export type LogEntry = z.infer<typeof LogEntrySchema>

export const PlanIdParamsSchema = z.object({ id: z.string().regex(PLAN_ID_RE, 'expected a plan id') }).strict()
export const PlanWaitQuerySchema = z.object({ wait: z.coerce.number().min(0).max(3600).default(0) }).strict()
export const PlanListQuerySchema = z.object({
  status: PlanStatusSchema.optional(), session_id: z.string().max(128).optional(), limit: z.coerce.number().int().min(1).max(500).default(50),
}).strict()
export const HaltBodySchema = z.object({ reason: z.string().trim().min(1, 'say why the plan is halted').max(2000) }).strict()
