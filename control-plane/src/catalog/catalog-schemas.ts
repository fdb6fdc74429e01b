/** Query and response shapes of the catalog routes (`/v1/actions`). */
import { z } from 'zod'
import { RiskSchema } from '@writ/packs'

export const ActionIdParamsSchema = z.object({ id: z.string().min(1).max(200) }).strict()

export const ActionListQuerySchema = z.object({
  q: z.string().max(200).optional(),
  pack: z.string().max(100).optional(),
  risk: RiskSchema.optional(),
  node: z.string().max(256).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
}).strict()

export const ActionSummarySchema = z.object({
  id: z.string(), pack: z.string(), title: z.string(), risk: RiskSchema, kind: z.string(), description: z.string(),
})

export const ActionDetailSchema = ActionSummarySchema.extend({
  pack_version: z.string(), pack_digest: z.string(), side_effects: z.array(z.string()),
  args: z.array(z.record(z.string(), z.unknown())), timeout: z.string(), examples: z.array(z.unknown()),
  nodes: z.array(z.object({ id: z.string(), name: z.string(), online: z.boolean() })),
})
