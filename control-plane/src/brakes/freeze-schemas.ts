/**
 * The freeze as it crosses the edge (`POST /v1/freeze`, `DELETE /v1/freeze`)
 * and as it is stored in the `WRIT_BRAKES` bucket, where every replica reads it.
 */
import { z } from 'zod'
import { Name } from '../config-policy.js'

/** `agents` (every agent principal) or one principal's id. */
export const FreezeScopeSchema = Name
export const AGENTS_SCOPE = 'agents'

export const FreezeRequestSchema = z.object({
  reason: z.string().min(1, 'say why: the reason is what every refused agent and Slack read').max(500),
  scope: FreezeScopeSchema.default(AGENTS_SCOPE),
}).strict()
export type FreezeRequest = z.infer<typeof FreezeRequestSchema>

export const UnfreezeQuerySchema = z.object({ scope: FreezeScopeSchema.default(AGENTS_SCOPE) }).strict()

export const FreezeSchema = z.object({
  scope: FreezeScopeSchema,
  reason: z.string(),
  /** The operator who froze it, and the person behind them. */
  by: z.string(),
  person: z.string(),
  at: z.string(),
}).strict()
export type Freeze = z.infer<typeof FreezeSchema>

/** The stored record: every freeze in force, one per scope. */
export const FreezeRecordSchema = z.object({ v: z.literal(1), freezes: z.array(FreezeSchema) }).strict()
export type FreezeRecord = z.infer<typeof FreezeRecordSchema>
