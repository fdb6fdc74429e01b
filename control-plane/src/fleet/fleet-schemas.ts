/** The node as `GET /v1/nodes` shows it. */
import { z } from 'zod'

export const NodeSchema = z.object({
  id: z.string(), name: z.string(), online: z.boolean(), draining: z.boolean(), last_seen: z.string(), version: z.string(),
  started_at: z.string(), in_flight: z.number(), interval_ms: z.number(),
  packs: z.array(z.object({ id: z.string(), version: z.string(), digest: z.string(), actions: z.number(), matches_catalog: z.boolean() })),
  /** The approver registry the runner reports holding. */
  approver_registry: z.object({ serial: z.number(), digest: z.string(), issued_at: z.string(), expires_at: z.string().optional() }).optional(),
  /** Against the control plane's registry: current, behind (a lower serial: it still trusts passkeys revoked since), ahead, differs, missing, unknown. */
  approver_registry_standing: z.enum(['current', 'behind', 'ahead', 'differs', 'missing', 'unknown']),
  /** Placement as the Nomad API states it (source "nomad"), or "unknown" with the reason; policy matches on it. */
  nomad: z.object({
    source: z.enum(['nomad', 'unknown']), datacenter: z.string().optional(), node_pool: z.string().optional(), node_class: z.string().optional(),
    nomad_name: z.string().optional(), nomad_status: z.string().optional(), reason: z.string().optional(),
  }),
})
