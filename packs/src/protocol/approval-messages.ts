/**
 * What approvals look like on the wire: a person's approval of a run (with
 * their passkey's assertion where the approver registry asks for one), and a
 * standing grant — an approval given in advance — as writs carry it.
 */
import { z } from 'zod'
import { ArgValueSchema, Base64Url, IsoTime, PrincipalRefSchema, Sha256Hex } from './message-primitives.js'

/**
 * A WebAuthn assertion over an approval's binding digest, as the browser
 * returned it: the authenticator signed `authenticator_data ||
 * SHA-256(client_data_json)`, and the client data names the challenge (the
 * binding), the origin and the type. Each field is base64url.
 */
export const PasskeyAssertionSchema = z.object({
  credential_id: Base64Url(1400),
  authenticator_data: Base64Url(2048),
  client_data_json: Base64Url(4096),
  signature: Base64Url(2048),
  user_handle: Base64Url(128).optional(),
}).strict()
export type PasskeyAssertion = z.infer<typeof PasskeyAssertionSchema>

/**
 * One person's approval as the writ carries it: who, when, the binding digest
 * they approved, and — where the approver registry asks for one — their
 * passkey's signature over that digest, which the runner verifies itself.
 */
export const ApprovalRefSchema = z.object({
  by: z.string().min(1).max(128),
  at: IsoTime,
  binding: Sha256Hex,
  passkey: PasskeyAssertionSchema.optional(),
  /**
   * Given alone, as break-glass (the policy lets one approver run the action
   * when the quorum cannot be reached): the writ then carries exactly this
   * one approval, and the dispatch key's signature vouches for the policy.
   */
  break_glass: z.literal(true).optional(),
}).strict()
export type ApprovalRef = z.infer<typeof ApprovalRefSchema>

/**
 * A standing grant as writs carry it (grant-statement.ts): its terms, their
 * digest, who approved it; signed once by the control plane.
 */
/** A grant id: `g`, 9 base-36 digits of the time, 8 hex. */
export const GRANT_ID_RE = /^g[0-9a-z]{9}[0-9a-f]{8}$/

/** What a grant covers and for how long: the fields its digest is computed over. */
export const GrantTermsSchema = z.object({
  id: z.string().regex(GRANT_ID_RE),
  principal: PrincipalRefSchema,
  action: z.string().min(3).max(200),
  /** A node id, or `*` for every node. */
  node_id: z.string().min(1).max(256),
  /** Exact arguments (canonical, as validated against the contract), or `any`. */
  args: z.union([z.literal('any'), z.record(z.string(), ArgValueSchema)]),
  /** How many runs it covers in all; null: as many as its lifetime allows. */
  uses: z.number().int().min(1).max(100_000).nullable(),
  reason: z.string().min(1).max(2000),
  issued_at: IsoTime,
  expires_at: IsoTime,
}).strict()
export type GrantTerms = z.infer<typeof GrantTermsSchema>

/**
 * One person's approval of a grant: who, when, the grant's digest, and —
 * where the approver registry gates the action — their passkey's signature
 * over that digest, which the runner verifies itself.
 */
export const GrantApprovalRefSchema = ApprovalRefSchema.pick({ by: true, at: true, passkey: true }).extend({ digest: Sha256Hex }).strict()
export type GrantApprovalRef = z.infer<typeof GrantApprovalRefSchema>

/** The statement the control plane signs: the terms, their digest, and who approved them. */
export const GrantStatementSchema = GrantTermsSchema.extend({
  v: z.literal(1),
  kind: z.literal('writ.grant'),
  digest: Sha256Hex,
  approvals: z.array(GrantApprovalRefSchema).min(1).max(16),
}).strict()
export type GrantStatement = z.infer<typeof GrantStatementSchema>

export const SignedGrantSchema = z.object({
  statement: GrantStatementSchema,
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
}).strict()
export type SignedGrant = z.infer<typeof SignedGrantSchema>
