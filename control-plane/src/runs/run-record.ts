/**
 * The run record kept in the `WRIT_RUNS` bucket, and the lifecycle it moves
 * through (DESIGN.md "Run lifecycle"). Terminal statuses never change.
 */
import { z } from 'zod'
import { ApprovedStateSchema, ArgValueSchema, PasskeyAssertionSchema, PrincipalRefSchema, RefusalSchema, RunOptionsSchema, approvalBinding } from '@writ/packs/protocol'
import { RiskSchema } from '@writ/packs'

export const RunStatusSchema = z.enum([
  'pending_approval', 'approved', 'dispatched', 'running',
  'succeeded', 'failed', 'denied', 'expired', 'node_offline', 'refused_by_runner', 'timed_out', 'canceled', 'lost',
])
export type RunStatus = z.infer<typeof RunStatusSchema>

export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set([
  'succeeded', 'failed', 'denied', 'expired', 'node_offline', 'refused_by_runner', 'timed_out', 'canceled', 'lost',
])
export const isTerminal = (s: RunStatus): boolean => TERMINAL_STATUSES.has(s)

export const PolicyOutcomeSchema = z.object({
  decision: z.enum(['allow', 'require_approval', 'deny']),
  rule: z.string().nullable(),
  reason: z.string().optional(),
  approver_groups: z.array(z.string()).optional(),
  quorum: z.number().int().optional(),
  ttl: z.string().optional(),
  /** The rule lets one approver run it alone when the quorum cannot be reached (break-glass). */
  break_glass: z.boolean().optional(),
})

export const RunOutcomeSchema = z.object({
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  started_at: z.string(),
  finished_at: z.string(),
  duration_ms: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  stdout_bytes: z.number().int(),
  stderr_bytes: z.number().int(),
  output_sha256: z.string(),
  parsed: z.unknown().optional(),
  parse_error: z.string().optional(),
})
export type RunOutcome = z.infer<typeof RunOutcomeSchema>

/** One person's decision on a run waiting for approval. */
export const DecisionSchema = z.object({
  by: z.string(),
  /** The person behind the principal, when the config names one (an agent and an operator can be one person). */
  person: z.string(),
  at: z.string(),
  /** The binding digest the decision was made on (DESIGN.md "Approvals"). */
  binding: z.string(),
  comment: z.string().optional(),
  /** The approver's passkey assertion over the binding; the writ carries it and runners verify it. */
  passkey: PasskeyAssertionSchema.optional(),
  /** Given alone, as break-glass: it stands for the whole quorum, and leaves a review item. */
  break_glass: z.literal(true).optional(),
})
export type Decision = z.infer<typeof DecisionSchema>

/** Where a gated run stands with its approvers. */
export const ApprovalStateSchema = z.object({
  binding: z.string(),
  approver_groups: z.array(z.string()),
  quorum: z.number().int().min(1),
  expires_at: z.string(),
  approvals: z.array(DecisionSchema).default([]),
  denial: DecisionSchema.extend({ reason: z.string() }).optional(),
  approved_at: z.string().optional(),
  /** Approvals must be signed with published passkeys (the approver registry asked for it when the run arrived). */
  passkey_required: z.boolean().optional(),
  /** The run's portal page (added when the run is shown, not stored). */
  url: z.string().optional(),
  /** How many approvals it has so far (added when the run is shown, not stored). */
  approvals_so_far: z.number().int().optional(),
  /** The run was dispatched by one approver alone (break-glass): who, why, and the review item others must acknowledge. */
  break_glass: z.object({ by: z.string(), person: z.string(), at: z.string(), reason: z.string(), review_id: z.string() }).optional(),
  /** Read-only runs fetched for the approver when the run arrived (impact preview). */
  preview: z.object({
    runs: z.array(z.object({ action: z.string(), run_id: z.string() })).default([]),
    unavailable: z.string().optional(),
  }).optional(),
})
export type ApprovalState = z.infer<typeof ApprovalStateSchema>

/** What a run covered by a standing grant says of it: the grant's id, the uses left after this one, and its expiry. */
export const GrantUseSchema = z.object({ id: z.string(), uses_left: z.number().int().nullable(), expires_at: z.string() }).strict()

export const RunSchema = z.object({
  id: z.string(),
  status: RunStatusSchema,
  /** Why the run is in its status, for a person to read. */
  status_reason: z.string(),
  action: z.string(),
  pack: z.string(),
  pack_digest: z.string(),
  risk: RiskSchema,
  node_id: z.string(),
  node_name: z.string(),
  args: z.record(z.string(), ArgValueSchema),
  reason: z.string(),
  requester: PrincipalRefSchema,
  /** The person behind the requester (config `person`), so they cannot approve it as an operator either. */
  requester_person: z.string().optional(),
  session_id: z.string().optional(),
  /** What the requester expects to happen (shown to the approver). */
  expected: z.string().optional(),
  /** Earlier runs the requester relies on (shown to the approver). */
  evidence: z.array(z.string()).optional(),
  options: RunOptionsSchema.default({}),
  /**
   * The approval binding's salt (approval-binding.ts), which goes into the
   * writ. Secret: `presentRun` and the store's index leave it out of
   * everything a caller reads. Absent on runs recorded before binding v2.
   */
  binding_salt: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /**
   * The Nomad state the approval is bound to (nomad-state.ts): set from the
   * impact preview while no approval has been given, so every approval and
   * the writ cover it. The run page shows "approved state: index N".
   */
  state: ApprovedStateSchema.optional(),
  policy: PolicyOutcomeSchema,
  approval: ApprovalStateSchema.optional(),
  /** The standing grant that covered the run, so it dispatched without waiting: its id, uses left after this one, and expiry. */
  grant: GrantUseSchema.optional(),
  refusal: RefusalSchema.optional(),
  result: RunOutcomeSchema.optional(),
  /** A result that arrived after the run was already declared lost. */
  late_result: z.object({ status: z.string(), finished_at: z.string() }).optional(),
  cancel_requested_by: z.string().optional(),
  created_at: z.string(),
  updated_at: z.string(),
  dispatched_at: z.string().optional(),
  /** After this instant without a result the run is `lost`. */
  deadline_at: z.string().optional(),
  finished_at: z.string().optional(),
  /** Hash of the run's `run.requested` audit event, kept for a writ sent later (after an approval). */
  request_hash: z.string().optional(),
  /** The control-plane instance that created the run. */
  created_by_instance: z.string(),
})
export type Run = z.infer<typeof RunSchema>

/** A run as every answer shows it (`presentRun`): never with its binding salt. */
export const ShownRunSchema = RunSchema.omit({ binding_salt: true })

/** The approval binding digest of a run: what a person approves, recomputed by the runner from the writ. */
export function runBinding(run: Pick<Run, 'id' | 'action' | 'pack_digest' | 'node_id' | 'args' | 'reason' | 'requester' | 'options' | 'binding_salt' | 'state'>): string {
  if (run.binding_salt === undefined) throw new Error(`run ${run.id} was recorded before approval binding v2 and has no binding salt`)
  return approvalBinding({
    run_id: run.id, action: run.action, pack_digest: run.pack_digest, node_id: run.node_id, args: run.args, reason: run.reason, requester: run.requester,
    options: run.options, binding_salt: run.binding_salt, ...(run.state !== undefined ? { state: run.state } : {}),
  })
}
