/**
 * Standing grants: the request bodies (parsed once at the edge), the record
 * kept in the `WRIT_GRANTS` bucket, and the grant as every answer shows it.
 */
import { z } from 'zod'
import { GRANT_ID_RE, GrantTermsSchema, PasskeyAssertionSchema, SignedGrantSchema } from '@writ/packs/protocol'
import { parseDuration } from '@writ/packs'
import { GrantUseSchema } from '../runs/index.js'

const Digest = z.string().regex(/^[0-9a-f]{64}$/, 'expected a grant digest (64 hex characters)')

export const GrantRequestSchema = z.object({
  /** The principal (agent or script) the grant lets run without asking each time. */
  principal: z.string().min(1).max(128),
  action: z.string().min(3).max(200),
  /** A node name, or `*` for every node. */
  node: z.string().min(1).max(256),
  /** `any`, or the exact arguments each covered run must have. */
  args: z.union([z.literal('any'), z.record(z.string(), z.unknown())]),
  /** How many runs it covers in all; without it, as many as its lifetime allows. */
  uses: z.number().int().min(1, 'uses must be at least 1').max(100_000).optional(),
  /** How long it stands, e.g. `1h`; at most `grants.max_lifetime`. */
  expires_in: z.string().refine((s) => parseDuration(s) !== undefined && (parseDuration(s) as number) > 0, { message: 'expected a positive duration like "30m" or "1h"' }),
  reason: z.string().trim().min(1).max(2000),
}).strict()
export type GrantRequest = z.infer<typeof GrantRequestSchema>

export const GrantIdParamsSchema = z.object({ id: z.string().regex(GRANT_ID_RE, 'expected a grant id') }).strict()

export const GrantApproveBodySchema = z.object({
  /** The digest the approver saw; a grant whose terms differ is refused. */
  digest: Digest.optional(),
  /** The approver's passkey assertion over the digest, where the approver registry gates the action. */
  passkey: PasskeyAssertionSchema.optional(),
}).strict()

export const GrantRevokeBodySchema = z.object({ reason: z.string().trim().min(1).max(2000).optional() }).strict()

export const GrantListQuerySchema = z.object({
  status: z.enum(['pending', 'active', 'revoked', 'expired', 'used_up']).optional(),
  principal: z.string().max(128).optional(),
}).strict()

export const GrantApprovalSchema = z.object({ by: z.string(), person: z.string(), at: z.string(), digest: Digest, passkey: PasskeyAssertionSchema.optional() }).strict()

/** A grant as stored: its terms, who must approve it, who did, how many uses are spent, and its signed statement once active. */
export const GrantRecordSchema = z.object({
  terms: GrantTermsSchema,
  /** The node's name as the grantor gave it, or `*`. */
  node_name: z.string(),
  digest: Digest,
  state: z.enum(['pending', 'active', 'revoked']),
  approver_groups: z.array(z.string()),
  quorum: z.number().int().min(1),
  approvals: z.array(GrantApprovalSchema),
  uses_spent: z.number().int().min(0),
  /** Made under the approver registry: only passkey-signed approvals over its digest count. */
  passkey_required: z.literal(true).optional(),
  created_by: z.string(),
  created_at: z.string(),
  activated_at: z.string().optional(),
  revoked: z.object({ by: z.string(), at: z.string(), reason: z.string().optional() }).strict().optional(),
  /** The statement writs carry, signed once the quorum is reached. */
  signed: SignedGrantSchema.optional(),
}).strict()
export type GrantRecord = z.infer<typeof GrantRecordSchema>

export const GrantStatusSchema = z.enum(['pending', 'active', 'revoked', 'expired', 'used_up'])
export type GrantStatus = z.infer<typeof GrantStatusSchema>

/** What a covered run's answer says of the grant that covered it. */
export { GrantUseSchema }
export type GrantUse = z.infer<typeof GrantUseSchema>

/** A grant as every answer shows it: never its signature; sensitive arguments redacted. */
export const ShownGrantSchema = z.object({
  id: z.string(), status: GrantStatusSchema, principal: z.string(), action: z.string(), node: z.string(),
  args: z.union([z.literal('any'), z.record(z.string(), z.unknown())]),
  uses: z.number().int().nullable(), uses_left: z.number().int().nullable(), expires_at: z.string(), reason: z.string(), digest: z.string(),
  quorum: z.number().int(), approver_groups: z.array(z.string()),
  /** Who approved, and with which passkey (its credential id) where one signed. */
  approvals: z.array(z.object({ by: z.string(), at: z.string(), passkey: z.string().optional() })),
  /** Only passkey-signed approvals over the digest count (the approver registry gates the action). */
  passkey_required: z.literal(true).optional(),
  /** Where its approvers sign it with their passkeys (a pending grant the registry gates). */
  sign_url: z.string().optional(),
  /** Why an active grant covers nothing: the approver registry's passkey rule finds too few signatures on it. */
  covers_nothing: z.string().optional(),
  created_by: z.string(), created_at: z.string(), activated_at: z.string().optional(),
  revoked_by: z.string().optional(), revoked_at: z.string().optional(), revoke_reason: z.string().optional(),
}).strict()
export type ShownGrant = z.infer<typeof ShownGrantSchema>
