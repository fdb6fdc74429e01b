/**
 * Request and response shapes of the REST API. Each is parsed once at the
 * edge; the OpenAPI document is generated from these same schemas.
 */
import { z } from 'zod'
import { RiskSchema } from '@writ/packs'
import { OutputChunkSchema, RunOptionsSchema } from '@writ/packs/protocol'
import { RunSchema, RunStatusSchema } from './run-record.js'

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string().regex(/^WRIT_ERR_[A-Z_]+$/), message: z.string() }).catchall(z.unknown()),
})

export const RunRequestSchema = z.object({
  action: z.string().min(3).max(200),
  node: z.string().min(1).max(256),
  args: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().trim().min(1).max(2000),
  session_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).optional(),
  options: RunOptionsSchema.optional(),
  /** Seconds to wait for the run to finish before answering 202. */
  wait: z.number().min(0).max(3600).default(0),
}).strict()
export type RunRequest = z.infer<typeof RunRequestSchema>

export const WaitQuerySchema = z.object({ wait: z.coerce.number().min(0).max(3600).default(0) }).strict()

export const RunIdParamsSchema = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict()
export const ActionIdParamsSchema = z.object({ id: z.string().min(1).max(200) }).strict()

export const RunListQuerySchema = z.object({
  session_id: z.string().max(128).optional(),
  node: z.string().max(256).optional(),
  status: RunStatusSchema.optional(),
  action: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
}).strict()

export const ActionListQuerySchema = z.object({
  q: z.string().max(200).optional(),
  pack: z.string().max(100).optional(),
  risk: RiskSchema.optional(),
  node: z.string().max(256).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
}).strict()

export const OutputQuerySchema = z.object({
  /** Chunk sequence to resume from (live), or stdout offset once finished. */
  cursor: z.coerce.number().int().min(0).default(0),
  wait: z.coerce.number().min(0).max(60).default(0),
}).strict()

export const AuditQuerySchema = z.object({
  since_seq: z.coerce.number().int().min(1).default(1),
  run_id: z.string().max(64).optional(),
  type: z.string().max(64).optional(),
  actor: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1000),
}).strict()

export const NodeSchema = z.object({
  id: z.string(), name: z.string(), online: z.boolean(), draining: z.boolean(), last_seen: z.string(), version: z.string(),
  started_at: z.string(), in_flight: z.number(), interval_ms: z.number(),
  packs: z.array(z.object({ id: z.string(), version: z.string(), digest: z.string(), actions: z.number(), matches_catalog: z.boolean() })),
  nomad: z.object({ datacenter: z.string().optional(), node_pool: z.string().optional(), node_class: z.string().optional(), region: z.string().optional() }),
})

export const ActionSummarySchema = z.object({
  id: z.string(), pack: z.string(), title: z.string(), risk: RiskSchema, kind: z.string(), description: z.string(),
})
export const ActionDetailSchema = ActionSummarySchema.extend({
  pack_version: z.string(), pack_digest: z.string(), side_effects: z.array(z.string()),
  args: z.array(z.record(z.string(), z.unknown())), timeout: z.string(), examples: z.array(z.unknown()),
  nodes: z.array(z.object({ id: z.string(), name: z.string(), online: z.boolean() })),
})

export const RunOutputSchema = z.object({
  run_id: z.string(), status: RunStatusSchema, done: z.boolean(),
  /** While running: live chunks; once done: the recorded stdout/stderr from `cursor`. */
  chunks: z.array(OutputChunkSchema),
  stdout: z.string().optional(), stderr: z.string().optional(),
  next_cursor: z.number().int(),
})

export { RunSchema }
