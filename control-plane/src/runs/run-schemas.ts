/**
 * Request and response shapes of the run routes, parsed once at the edge;
 * the OpenAPI document is generated from these same schemas.
 */
import { z } from 'zod'
import { OutputChunkSchema, RunOptionsSchema } from '@writ/packs/protocol'
import { RunStatusSchema } from './run-record.js'

const RunIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected a run id')

export const RunRequestSchema = z.object({
  action: z.string().min(3).max(200),
  node: z.string().min(1).max(256),
  args: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().trim().min(1).max(2000),
  session_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).optional(),
  /** What the requester expects to happen; shown to an approver. */
  expected: z.string().trim().min(1).max(2000).optional(),
  /** Ids of earlier runs this request relies on; each must be one of the requester's own. */
  evidence: z.array(RunIdSchema).max(20).refine((ids) => new Set(ids).size === ids.length, 'evidence lists a run twice').optional(),
  options: RunOptionsSchema.optional(),
  /** Seconds to wait for the run to finish before answering 202. */
  wait: z.number().min(0).max(3600).default(0),
}).strict()
export type RunRequest = z.infer<typeof RunRequestSchema>

export const WaitQuerySchema = z.object({ wait: z.coerce.number().min(0).max(3600).default(0) }).strict()

export const RunIdParamsSchema = z.object({ id: RunIdSchema }).strict()

export const RunListQuerySchema = z.object({
  session_id: z.string().max(128).optional(),
  node: z.string().max(256).optional(),
  status: RunStatusSchema.optional(),
  action: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
}).strict()

export const OutputQuerySchema = z.object({
  /** Chunk sequence to resume from (live), or stdout offset once finished. */
  cursor: z.coerce.number().int().min(0).default(0),
  wait: z.coerce.number().min(0).max(60).default(0),
}).strict()

export const RunOutputSchema = z.object({
  run_id: z.string(), status: RunStatusSchema, done: z.boolean(),
  /** While running: live chunks; once done: the recorded stdout/stderr from `cursor`. */
  chunks: z.array(OutputChunkSchema),
  stdout: z.string().optional(), stderr: z.string().optional(),
  next_cursor: z.number().int(),
})
