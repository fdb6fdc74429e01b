/** Query shape of `GET /v1/audit`. */
import { z } from 'zod'

export const AuditQuerySchema = z.object({
  /** The first stream sequence to read; a page's `Writ-Next-Seq` header gives the next page's. */
  since_seq: z.coerce.number().int().min(1).default(1),
  run_id: z.string().max(64).optional(),
  type: z.string().max(64).optional(),
  actor: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1000),
}).strict()
export type AuditQuery = z.infer<typeof AuditQuerySchema>
