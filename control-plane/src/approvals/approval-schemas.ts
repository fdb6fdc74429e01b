/** Shapes of the approval routes, parsed once at the edge and rendered into the OpenAPI document. */
import { z } from 'zod'
import { PasskeyAssertionSchema } from '@writ/packs/protocol'

const Binding = z.string().regex(/^[0-9a-f]{64}$/, 'expected the run\'s binding digest (64 hex characters)')

export const ApproveBodySchema = z.object({
  comment: z.string().trim().min(1).max(2000).optional(),
  /** The binding digest the decision is made on; when given it must match the run's. */
  binding: Binding.optional(),
  /** A WebAuthn assertion over the binding by the approver's published passkey (required where the approver registry asks). */
  passkey: PasskeyAssertionSchema.optional(),
}).strict()

export const DenyBodySchema = z.object({
  reason: z.string().trim().min(1, 'say why the run is denied; the agent is told').max(2000),
  binding: Binding.optional(),
}).strict()

export const ApprovalListQuerySchema = z.object({
  node: z.string().max(256).optional(),
  action: z.string().max(200).optional(),
  requester: z.string().max(128).optional(),
  /** Only runs the caller may decide (in one of their approver groups, not their own). */
  mine: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** Where the page starts: the `next_cursor` of the page before. */
  cursor: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected the next_cursor of the page before').optional(),
}).strict()

export const ApprovalSummarySchema = z.object({
  url: z.string(),
  expires_at: z.string(),
  quorum: z.number().int(),
  approvals_so_far: z.number().int(),
  approver_groups: z.array(z.string()),
  binding: z.string(),
  passkey_required: z.boolean(),
})
