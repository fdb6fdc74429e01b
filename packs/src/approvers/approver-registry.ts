/**
 * The approver registry: the people whose passkeys may approve risky actions,
 * their credentials' public keys, and what runners demand (from which risk,
 * which groups, how many distinct people). An administrator signs it with the
 * approvers key — never the dispatch key — so whoever holds the control plane
 * cannot add an approver; runners and the control plane load the same file.
 */
import { sign } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from '../canonical-json.js'
import { globMatch } from '../glob-match.js'
import { RISK_ORDER, RiskSchema, type Risk, type SideEffect } from '../pack-schema.js'
import { declaresNoSideEffects } from '../side-effects.js'
import { verifySignature, type SigningKey, type TrustedKey } from '../protocol/writ-signing.js'

const IsoTime = z.string().datetime({ offset: true })
const Base64Url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/, 'expected base64url')
const Name = z.string().min(1).max(128)

export const ApproverEntrySchema = z.object({
  /** The operator principal the passkey belongs to (the `by` of an approval). */
  operator: Name,
  /** The person behind the operator; two entries of one person count once toward a quorum. */
  person: Name,
  /** Every principal id that person holds (an agent token too): none of their runs can be approved by them. */
  principals: z.array(Name).max(64).default([]),
  groups: z.array(Name).max(64),
  credential_id: Base64Url(1400),
  /** The credential's public key, COSE-encoded. */
  public_key: Base64Url(2048),
  label: z.string().max(100).optional(),
  registered_at: IsoTime,
}).strict()
export type ApproverEntry = z.infer<typeof ApproverEntrySchema>

export const ApprovalRequirementSchema = z.object({
  groups: z.array(Name).min(1, 'name at least one approver group'),
  quorum: z.number().int().min(1).max(16).default(1),
  /**
   * One approver's passkey may stand for the whole quorum when the control
   * plane's policy allowed break-glass. Unset (false): runners demand the
   * quorum whatever a writ says, so a control plane cannot lower it alone.
   */
  break_glass: z.boolean().optional(),
}).strict()
export type ApprovalRequirement = z.infer<typeof ApprovalRequirementSchema>

export const RequirementRuleSchema = z.object({
  /** Action-id globs (`nomad.node_drain`, `nomad.*`). */
  actions: z.array(z.string().min(1).max(200)).min(1),
  groups: z.array(Name).min(1).optional(),
  quorum: z.number().int().min(1).max(16).optional(),
  break_glass: z.boolean().optional(),
}).strict()

export const RegistryRequirementsSchema = z.object({
  /**
   * Set: exactly the actions at or above this risk need passkey-signed
   * approvals. Unset (the default): every action that changes state (its
   * side effects are not declared "None") and every action at or above high
   * risk.
   */
  min_risk: RiskSchema.optional(),
  default: ApprovalRequirementSchema,
  /** First match wins; a rule's missing `groups`/`quorum` come from `default`. */
  rules: z.array(RequirementRuleSchema).max(200).default([]),
}).strict()

export const RelyingPartySchema = z.object({
  /** The WebAuthn relying-party id (the portal's host name). */
  id: z.string().min(1).max(253),
  /** Origins an assertion may come from (the portal's). */
  origins: z.array(z.string().url()).min(1).max(16),
}).strict()

export const ApproverRegistrySchema = z.object({
  v: z.literal(1),
  kind: z.literal('writ.approver-registry'),
  /**
   * One more than the registry it replaces (`writ approvers export` mints
   * it): a daemon never accepts a lower serial than one it accepted before,
   * across restarts. Absent only on registries from before serials (read as 0).
   */
  serial: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  issued_at: IsoTime,
  /** After this instant no daemon accepts the registry: it has to be republished. */
  expires_at: IsoTime.optional(),
  relying_party: RelyingPartySchema,
  require: RegistryRequirementsSchema,
  approvers: z.array(ApproverEntrySchema).max(10_000),
}).strict()
export type ApproverRegistry = z.infer<typeof ApproverRegistrySchema>
export type ApproverRegistryInput = z.input<typeof ApproverRegistrySchema>

export const SignedApproverRegistrySchema = z.object({
  registry: ApproverRegistrySchema,
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
}).strict()
export type SignedApproverRegistry = z.infer<typeof SignedApproverRegistrySchema>

export class ApproverRegistryError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ApproverRegistryError' }
}

/** Validates and signs a registry with the approvers key. */
export function signApproverRegistry(input: ApproverRegistryInput, key: SigningKey): SignedApproverRegistry {
  const parsed = ApproverRegistrySchema.safeParse(input)
  if (!parsed.success) throw new ApproverRegistryError(`not a valid approver registry: ${describe(parsed.error)}`)
  const registry = parsed.data
  duplicateCredential(registry)
  if (registry.expires_at !== undefined && Date.parse(registry.expires_at) <= Date.parse(registry.issued_at)) {
    throw new ApproverRegistryError(`expires_at ${registry.expires_at} is not after issued_at ${registry.issued_at}`)
  }
  const sig = sign(null, Buffer.from(canonicalJson(registry)), key.privateKey).toString('base64')
  return { registry, key_id: key.keyId, sig }
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0]
  return `${issue?.path.map(String).join('.') || '(top level)'}: ${issue?.message ?? 'invalid'}`
}

function duplicateCredential(registry: ApproverRegistry): void {
  const seen = new Set<string>()
  for (const a of registry.approvers) {
    if (seen.has(a.credential_id)) throw new ApproverRegistryError(`credential ${a.credential_id.slice(0, 16)}… is listed twice`)
    seen.add(a.credential_id)
  }
}

export interface RegistryKeys {
  /** The approvers public key(s) this daemon trusts for the registry (a list, for rotation). */
  approvers: readonly TrustedKey[]
  /** The dispatch keys this daemon knows; a registry signed by one of them is refused. */
  dispatch: readonly TrustedKey[]
}

/**
 * Parses and verifies a published registry file. Throws ApproverRegistryError
 * saying exactly what is wrong: not JSON, not the format, signed by a dispatch
 * key, signed by an unknown key, or changed after signing.
 */
export function verifyApproverRegistry(text: string, keys: RegistryKeys, source = 'approver registry'): ApproverRegistry {
  const dispatchIds = new Set(keys.dispatch.map((k) => k.keyId))
  for (const k of keys.approvers) {
    if (dispatchIds.has(k.keyId)) {
      throw new ApproverRegistryError(`the approvers key ${k.keyId} is also a dispatch key; the registry must be signed by a separate key (writ keys approvers), or whoever holds the control plane could vouch for its own approvers`)
    }
  }
  let raw: unknown
  try { raw = JSON.parse(text) } catch (err) {
    throw new ApproverRegistryError(`${source} is not JSON (expected the file writ approvers export writes)`, { cause: err })
  }
  const parsed = SignedApproverRegistrySchema.safeParse(raw)
  if (!parsed.success) throw new ApproverRegistryError(`${source} does not match the registry format at ${describe(parsed.error)}`)
  const signed = parsed.data
  if (dispatchIds.has(signed.key_id)) {
    throw new ApproverRegistryError(`${source} is signed with dispatch key ${signed.key_id} (the control plane's writ-signing key); it must be signed with the separate approvers key, so a compromised control plane cannot vouch for its own approvers`)
  }
  // The signature covers the registry exactly as written; zod defaults must not change what is verified.
  const check = verifySignature((raw as { registry: unknown }).registry, signed.key_id, signed.sig, keys.approvers)
  if (!check.ok) {
    const trusted = keys.approvers.map((k) => k.keyId).join(', ')
    throw new ApproverRegistryError(check.code === 'unknown_key'
      ? `${source} is signed with key ${signed.key_id}, not with the approvers key (${trusted})`
      : `${source} has a bad signature: it does not verify against approvers key ${signed.key_id}; the file was changed after it was signed`)
  }
  duplicateCredential(signed.registry)
  return signed.registry
}

/** What an action declares that decides whether it needs passkeys: from the daemon's own catalog, never from a writ. */
export interface DeclaredAction { risk: Risk, side_effects: readonly SideEffect[] }

/** Why the registry gates an action (a phrase for messages), or undefined when it does not. */
export function passkeyGateReason(require: ApproverRegistry['require'], declared: DeclaredAction): string | undefined {
  const risk = RISK_ORDER[declared.risk]
  if (require.min_risk !== undefined) {
    return risk >= RISK_ORDER[require.min_risk] ? `it is ${declared.risk} risk, at or above the registry's min_risk ${require.min_risk}` : undefined
  }
  if (risk >= RISK_ORDER.high) return `it is ${declared.risk} risk`
  if (!declaresNoSideEffects(declared.side_effects)) return 'it changes state: its side effects are not declared None'
  return undefined
}

/** Which actions the registry gates, in words (the CLI and the portal say it). */
export function describePasskeyGate(require: ApproverRegistry['require']): string {
  return require.min_risk !== undefined
    ? `every action at or above ${require.min_risk} risk`
    : 'every action that changes state (side effects not declared None) and every action at or above high risk'
}

/** What approving `action` takes under the registry, or undefined when it needs no passkey. */
export function passkeyRequirement(registry: ApproverRegistry, action: string, declared: DeclaredAction): (ApprovalRequirement & { rule: string, why: string }) | undefined {
  const r = registry.require
  const why = passkeyGateReason(r, declared)
  if (why === undefined) return undefined
  for (const [i, rule] of r.rules.entries()) {
    if (rule.actions.some((g) => globMatch(g, action))) {
      const breakGlass = rule.break_glass ?? r.default.break_glass
      return { groups: rule.groups ?? r.default.groups, quorum: rule.quorum ?? r.default.quorum, ...(breakGlass !== undefined ? { break_glass: breakGlass } : {}), rule: `rules[${i}] (${rule.actions.join(', ')})`, why }
    }
  }
  return { ...r.default, rule: 'default', why }
}

/** The WebAuthn challenge for an approval: the binding digest's 32 bytes, base64url. */
export function bindingChallenge(binding: string): string {
  return Buffer.from(binding, 'hex').toString('base64url')
}

/** The registry's entries for one operator (their published passkeys). */
export function approverCredentials(registry: ApproverRegistry, operator: string): ApproverEntry[] {
  return registry.approvers.filter((a) => a.operator === operator)
}
