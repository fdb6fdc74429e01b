/**
 * Zod schemas for every message on the wire. Each crosses a process boundary,
 * so each is parsed once at the edge with `safeParse`. Their building blocks
 * are in message-primitives.ts, approvals and grants in approval-messages.ts
 * (re-exported here).
 */
import { z } from 'zod'
import { ArgValueSchema, IsoTime, NodeId, PrincipalRefSchema, RunId, Sha256Hex } from './message-primitives.js'
import { ApprovalRefSchema, SignedGrantSchema } from './approval-messages.js'
import { ApprovedStateSchema } from './nomad-state.js'

export const PROTOCOL_VERSION = 1

/**
 * The writ's own format version, apart from the other messages'. It moves
 * when what a runner must check changes: 2 binds approvals through a per-run
 * salt and covers the run's options (see approval-binding.ts). A runner
 * refuses a writ of any other version (an older runner: `malformed` at
 * `writ.v`), so it never checks approvals against a binding it computes
 * differently; heartbeats, results and cancels keep PROTOCOL_VERSION, so a
 * fleet mid-upgrade stays visible and reports.
 */
export const WRIT_VERSION = 2

export { ArgValueSchema, PrincipalRefSchema } from './message-primitives.js'
export {
  PasskeyAssertionSchema, ApprovalRefSchema, GRANT_ID_RE, GrantTermsSchema, GrantApprovalRefSchema, GrantStatementSchema, SignedGrantSchema,
} from './approval-messages.js'
export type { PasskeyAssertion, ApprovalRef, GrantTerms, GrantApprovalRef, GrantStatement, SignedGrant } from './approval-messages.js'

/** Narrowing options: a caller can only lower the declared limits. */
export const RunOptionsSchema = z.object({
  timeout_ms: z.number().int().positive().optional(),
  max_stdout_bytes: z.number().int().positive().optional(),
}).strict()

/** The writ: everything a runner needs to decide, bound by one signature. */
export const WritSchema = z.object({
  v: z.literal(WRIT_VERSION),
  run_id: RunId,
  node_id: NodeId,
  node_name: z.string().min(1).max(256),
  action: z.string().min(3).max(200),
  pack: z.string().min(1).max(100),
  pack_digest: Sha256Hex,
  args: z.record(z.string(), ArgValueSchema),
  reason: z.string().min(1).max(2000),
  requester: PrincipalRefSchema,
  approvals: z.array(ApprovalRefSchema).max(16).default([]),
  /** The standing grant that covers this run instead of approvals of its own. */
  grant: SignedGrantSchema.optional(),
  /** Hash of the run's `run.requested` audit event: the runner journals it, so every runner witnesses the chain. */
  request_hash: Sha256Hex,
  session_id: z.string().max(128).optional(),
  options: RunOptionsSchema.default({}),
  /**
   * 32 random bytes (hex) the approval binding is computed with, so a binding
   * shown on a page or in the audit trail cannot be tested against guesses of
   * a sensitive argument. Only the run record and the writ hold it.
   */
  binding_salt: Sha256Hex,
  /**
   * The Nomad state the approvers saw (nomad-state.ts), bound into the
   * approval; the runner re-reads it right before acting and refuses
   * `state_changed` if it moved.
   */
  state: ApprovedStateSchema.optional(),
  issued_at: IsoTime,
  expires_at: IsoTime,
  nonce: z.string().regex(/^[0-9a-f]{32}$/),
}).strict()
export type Writ = z.infer<typeof WritSchema>

/** A plan id: `p`, 9 base-36 digits of the time, 8 hex; a target's run id appends `-<position>`. */
export const PLAN_ID_RE = /^p[0-9a-z]{9}[0-9a-f]{8}$/

/**
 * What the dispatch key signs once per plan (again only when a long rollout
 * outlives the writ lifetime): the root, how many leaves it covers, and the
 * fields every target's writ shares.
 */
export const PlanStatementSchema = z.object({
  v: z.literal(1),
  kind: z.literal('writ.plan-root'),
  plan_id: z.string().regex(PLAN_ID_RE),
  root: Sha256Hex,
  count: z.number().int().min(1).max(100_000),
  reason: z.string().min(1).max(2000),
  requester: PrincipalRefSchema,
  /** Hash of the plan's `plan.requested` audit event: every target's runner journals it as a witness. */
  request_hash: Sha256Hex,
  session_id: z.string().max(128).optional(),
  issued_at: IsoTime,
  expires_at: IsoTime,
}).strict()
export type PlanStatement = z.infer<typeof PlanStatementSchema>

/** What a plan writ carries instead of a signature of its own. */
export const PlanProofSchema = z.object({
  statement: PlanStatementSchema,
  /** Ed25519 over the statement's canonical JSON, by the key the envelope names. */
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
  position: z.number().int().min(0).max(99_999),
  /** The inclusion proof: ⌈log₂ count⌉ SHA-256 hashes at most, concatenated, hex. */
  proof: z.string().regex(/^(?:[0-9a-f]{64}){0,17}$/),
}).strict()
export type PlanProof = z.infer<typeof PlanProofSchema>

/**
 * A writ and what vouches for it: its own signature (`sig`), or — a target of
 * a plan — the plan's signed statement and the leaf's inclusion proof
 * (`plan`, plan-root.ts), one signature for every target. Exactly one of them.
 */
export const SignedWritSchema = z.object({
  writ: WritSchema,
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/).optional(),
  plan: PlanProofSchema.optional(),
}).strict().refine((s) => (s.sig === undefined) !== (s.plan === undefined), { message: 'a writ carries either its own signature (sig) or a plan proof (plan), exactly one', path: ['sig'] })
export type SignedWrit = z.infer<typeof SignedWritSchema>

export const CancelSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  run_id: RunId,
  node_id: NodeId,
  issued_at: IsoTime,
  by: z.string().min(1).max(128),
}).strict()
export type Cancel = z.infer<typeof CancelSchema>

export const SignedCancelSchema = z.object({ cancel: CancelSchema, key_id: z.string().regex(/^[0-9a-f]{16}$/), sig: z.string() }).strict()
export type SignedCancel = z.infer<typeof SignedCancelSchema>

/**
 * Why a runner refused a writ; each is journaled and answered. `not_local`:
 * the action would reach Nomad about another node, or an allocation that is
 * not on the runner's node (a runner acts on Nomad only for its own node).
 */
export const RefusalCodeSchema = z.enum([
  'malformed', 'bad_signature', 'unknown_key', 'wrong_node', 'expired', 'not_yet_valid',
  'unknown_action', 'digest_mismatch', 'bad_args', 'replayed', 'draining', 'shell_not_allowed',
  'target_unavailable', 'journal_unavailable', 'bad_approval', 'not_local', 'lifetime_too_long',
  // Passkey-signed approvals (the approver registry): the action needs a
  // person's passkey and the writ has none; an assertion does not verify; its
  // credential is not in the registry; the approver requested the run; too few
  // distinct approvers from the allowed groups.
  'passkey_required', 'bad_passkey', 'unknown_approver', 'self_approval', 'quorum_not_met',
  // The registry in force passed its expires_at: no passkey approval can be checked until a new one is published.
  'registry_expired',
  // A plan's target: its leaf is not under the signed root (a target added or changed, another plan's leaf,
  // another node's proof); the plan statement or an approval does not fit the writ.
  'not_in_plan', 'bad_plan',
  // A standing grant (grant-statement.ts): its signature or terms do not fit the writ; it has expired; this runner
  // already accepted as many runs under it as it covers.
  'bad_grant', 'grant_expired', 'grant_used_up',
  // The Nomad object the approval was given on (the writ's `state`) moved before the action ran: nothing was called.
  'state_changed',
])
export type RefusalCode = z.infer<typeof RefusalCodeSchema>

export const RefusalSchema = z.object({ code: RefusalCodeSchema, message: z.string() }).strict()
export type Refusal = z.infer<typeof RefusalSchema>

/** The runner's immediate answer to a writ (request/reply). */
export const WritAckSchema = z.discriminatedUnion('accepted', [
  z.object({ v: z.literal(PROTOCOL_VERSION), run_id: z.string(), node_id: NodeId, accepted: z.literal(true) }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), run_id: z.string(), node_id: NodeId, accepted: z.literal(false), refusal: RefusalSchema }).strict(),
])
export type WritAck = z.infer<typeof WritAckSchema>

export const OutputChunkSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  run_id: RunId,
  seq: z.number().int().nonnegative(),
  stream: z.enum(['stdout', 'stderr']),
  data: z.string(),
}).strict()
export type OutputChunk = z.infer<typeof OutputChunkSchema>

export const RunnerStatusSchema = z.enum(['succeeded', 'failed', 'timed_out', 'canceled', 'refused'])
export type RunnerStatus = z.infer<typeof RunnerStatusSchema>

export const RunResultSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  run_id: z.string().min(1).max(64),
  node_id: NodeId,
  action: z.string(),
  status: RunnerStatusSchema,
  refusal: RefusalSchema.optional(),
  /** Human-readable cause for anything but success. */
  error: z.string().optional(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  started_at: IsoTime,
  finished_at: IsoTime,
  duration_ms: z.number().nonnegative(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  stdout_bytes: z.number().int().nonnegative(),
  stderr_bytes: z.number().int().nonnegative(),
  /** SHA-256 of the full stdout as produced, before any cap. */
  output_sha256: Sha256Hex,
  parsed: z.unknown().optional(),
  parse_error: z.string().optional(),
}).strict()
export type RunResult = z.infer<typeof RunResultSchema>

export const PackInventorySchema = z.object({
  id: z.string(), version: z.string(), digest: Sha256Hex, actions: z.number().int().nonnegative(),
}).strict()

export const HeartbeatSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  node_id: NodeId,
  node_name: z.string().min(1).max(256),
  version: z.string(),
  started_at: IsoTime,
  at: IsoTime,
  seq: z.number().int().nonnegative(),
  draining: z.boolean(),
  interval_ms: z.number().int().positive(),
  in_flight: z.number().int().nonnegative(),
  packs: z.array(PackInventorySchema),
  /** The approver registry the runner holds, when it is configured with one: the control plane flags a runner behind its own. */
  approver_registry: z.object({
    serial: z.number().int().nonnegative(),
    digest: Sha256Hex,
    issued_at: IsoTime,
    expires_at: IsoTime.optional(),
  }).strict().optional(),
  /** Nomad placement facts, when the runner knows them (from NOMAD_* env). */
  nomad: z.object({
    datacenter: z.string().optional(),
    node_pool: z.string().optional(),
    node_class: z.string().optional(),
    region: z.string().optional(),
  }).strict().default({}),
}).strict()
export type Heartbeat = z.infer<typeof HeartbeatSchema>

/** A node event: automated interventions (watchdog kicks) next to human ones. */
export const NodeEventSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  node_id: NodeId,
  node_name: z.string(),
  at: IsoTime,
  source: z.string().min(1).max(64),
  kind: z.string().regex(/^[a-z_]{1,64}$/),
  severity: z.enum(['info', 'warning', 'critical']),
  message: z.string().max(4000),
  data: z.record(z.string(), z.unknown()).default({}),
}).strict()
export type NodeEvent = z.infer<typeof NodeEventSchema>
