/** Shapes of the break-glass routes, parsed once at the edge. */
import { z } from 'zod'
import { PasskeyAssertionSchema } from '@writ/packs/protocol'

export const BreakGlassBodySchema = z.object({
  reason: z.string().trim().min(1, 'say why the quorum cannot be reached; the reason is broadcast, audited and reviewed').max(2000),
  /** The binding digest the operator read; when given it must match the run's. */
  binding: z.string().regex(/^[0-9a-f]{64}$/, 'expected the run\'s binding digest (64 hex characters)').optional(),
  /** The operator's passkey assertion over the binding, where the approver registry asks for one. */
  passkey: PasskeyAssertionSchema.optional(),
}).strict()

export const ReviewListQuerySchema = z.object({
  /** Only reviews nobody has acknowledged yet. */
  open: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
}).strict()

export const ReviewIdParamsSchema = z.object({ id: z.string().regex(/^v[0-9a-z]{9}[0-9a-f]{8}$/, 'expected a review id') }).strict()

export const ReviewAckBodySchema = z.object({ comment: z.string().trim().min(1).max(2000).optional() }).strict()
