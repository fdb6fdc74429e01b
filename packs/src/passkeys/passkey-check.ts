/**
 * Passkey-signed approvals, checked the same way by the control plane (when a
 * person approves) and by the runner (before it runs anything): every carried
 * assertion must verify against the approver registry — the credential's
 * public key, the challenge equal to the binding digest recomputed from the
 * writ, the origin and rpId, the user-verification flag — come from someone
 * other than the requester, and enough distinct people from the allowed
 * groups must have signed.
 *
 * This module loads @simplewebauthn/server; the runner imports it only when a
 * writ needs it (its idle memory stays small).
 */
import { verifyAuthenticationResponse } from '@simplewebauthn/server'
import { approvalBinding } from '../protocol/approval-binding.js'
import {
  bindingChallenge, passkeyRequirement, type ApprovalRequirement, type ApproverEntry, type ApproverRegistry, type DeclaredAction,
} from '../approvers/approver-registry.js'
import type { PasskeyAssertion, RefusalCode, SignedGrant, Writ } from '../protocol/messages.js'

export type PasskeyRefusalCode = Extract<RefusalCode, 'passkey_required' | 'bad_passkey' | 'unknown_approver' | 'self_approval' | 'quorum_not_met' | 'registry_expired'>
export type PasskeyFailure = { ok: false, code: PasskeyRefusalCode, message: string }

export type AssertionCheck = { ok: true, entry: ApproverEntry } | PasskeyFailure

export interface VerifiedApprover { by: string, person: string, credential_id: string }

export type PasskeyVerdict =
  | { ok: true, /** What the registry asks of this action; undefined when it does not gate it. */ requirement?: ApprovalRequirement & { rule: string, why: string }, verified: VerifiedApprover[] }
  | PasskeyFailure

const short = (id: string): string => `${id.slice(0, 12)}…`

function clientDataChallenge(clientDataJson: string): string | undefined {
  try {
    const c = JSON.parse(Buffer.from(clientDataJson, 'base64url').toString('utf8')) as { challenge?: unknown }
    return typeof c.challenge === 'string' ? c.challenge : undefined
  } catch { return undefined }
}

/**
 * Verifies one assertion by `by` over `binding` against the registry. Says
 * which check failed; never throws.
 */
export async function verifyPasskeyAssertion(
  assertion: PasskeyAssertion, by: string, binding: string, registry: ApproverRegistry,
  /** How a refusal names what the assertion had to sign. */
  signs = 'this run\'s binding',
): Promise<AssertionCheck> {
  const entry = registry.approvers.find((a) => a.credential_id === assertion.credential_id)
  if (!entry) return { ok: false, code: 'unknown_approver', message: `the approval by ${by} is signed with passkey ${short(assertion.credential_id)}, which is not in the approver registry` }
  if (entry.operator !== by) return { ok: false, code: 'unknown_approver', message: `the approval by ${by} is signed with a passkey registered to ${entry.operator}` }
  const expected = bindingChallenge(binding)
  const signed = clientDataChallenge(assertion.client_data_json)
  if (signed !== expected) {
    return { ok: false, code: 'bad_passkey', message: `the passkey of ${by} signed ${signed ? `challenge ${short(signed)}` : 'no readable challenge'}, not ${signs} (${short(expected)}): the signature belongs to another approval` }
  }
  try {
    const result = await verifyAuthenticationResponse({
      response: {
        id: assertion.credential_id, rawId: assertion.credential_id, type: 'public-key', clientExtensionResults: {},
        response: {
          authenticatorData: assertion.authenticator_data, clientDataJSON: assertion.client_data_json, signature: assertion.signature,
          ...(assertion.user_handle ? { userHandle: assertion.user_handle } : {}),
        },
      },
      expectedChallenge: expected,
      expectedOrigin: registry.relying_party.origins,
      expectedRPID: registry.relying_party.id,
      expectedType: 'webauthn.get',
      // Counters are not tracked: each binding is signed for one run, and a run id never runs twice.
      credential: { id: entry.credential_id, publicKey: new Uint8Array(Buffer.from(entry.public_key, 'base64url')), counter: 0 },
      requireUserVerification: true,
    })
    if (!result.verified) return { ok: false, code: 'bad_passkey', message: `the passkey signature of ${by} (credential ${short(entry.credential_id)}) does not verify` }
  } catch (err) {
    return { ok: false, code: 'bad_passkey', message: `the passkey assertion of ${by} (credential ${short(entry.credential_id)}) is not valid: ${(err as Error).message}` }
  }
  return { ok: true, entry }
}

/** Whether `entry`'s person requested the writ (under any of their principal ids). */
export function isRequester(entry: ApproverEntry, requesterId: string): boolean {
  return entry.operator === requesterId || entry.principals.includes(requesterId)
}

/** Approvals as a writ or a grant statement carries them. */
interface CarriedApproval { by: string, passkey?: PasskeyAssertion | undefined, break_glass?: true | undefined }

/** What one set of approvals is checked as: who asked, what the assertions sign, and how refusals name them. */
interface ApprovalSet {
  action: string
  requester: string
  approvals: readonly CarriedApproval[]
  binding: string
  /** "this writ", "grant g…": what carries the approvals. */
  holder: string
  /** What the assertions must sign, in a refusal ("this run's binding", "the grant's digest"). */
  signs: string
}

/**
 * The whole check of a writ's approvals against the registry, for an action
 * declared as `declared` (risk and side effects from the runner's own
 * catalog, never the writ). Every carried assertion is verified, required or
 * not; an action the registry gates needs a quorum of distinct people from
 * the allowed groups.
 */
export function checkPasskeyApprovals(
  writ: Writ, declared: DeclaredAction, registry: ApproverRegistry,
  /** What the approvals are bound to: the run's binding, or — a plan's target — the plan's (over its root). */
  binding: string = approvalBinding(writ),
): Promise<PasskeyVerdict> {
  return checkApprovalSet({ action: writ.action, requester: writ.requester.id, approvals: writ.approvals, binding, holder: 'this writ', signs: 'this run\'s binding' }, declared, registry)
}

/**
 * The same check for a writ a standing grant covers: the grant's approvals
 * stand for the run's, so their passkeys must sign the grant's digest (its
 * own domain, never equal to a run's binding), come from people other than
 * the principal the grant is for, and reach the registry's quorum. The
 * grant's signature, terms and digest are checked before (checkGrant).
 */
export function checkGrantPasskeys(writ: Writ & { grant: SignedGrant }, declared: DeclaredAction, registry: ApproverRegistry): Promise<PasskeyVerdict> {
  const s = writ.grant.statement
  return checkApprovalSet({ action: writ.action, requester: writ.requester.id, approvals: s.approvals, binding: s.digest, holder: `grant ${s.id}`, signs: `grant ${s.id}'s digest` }, declared, registry)
}

async function checkApprovalSet(set: ApprovalSet, declared: DeclaredAction, registry: ApproverRegistry): Promise<PasskeyVerdict> {
  const requirement = passkeyRequirement(registry, set.action, declared)
  const verified: Array<VerifiedApprover & { groups: readonly string[] }> = []
  for (const a of set.approvals) {
    if (!a.passkey) continue
    const check = await verifyPasskeyAssertion(a.passkey, a.by, set.binding, registry, set.signs)
    if (!check.ok) return check
    if (isRequester(check.entry, set.requester)) {
      return { ok: false, code: 'self_approval', message: `the approval by ${a.by} in ${set.holder} comes from the person who requested the run (${set.requester}); nobody approves their own run` }
    }
    verified.push({ by: a.by, person: check.entry.person, credential_id: check.entry.credential_id, groups: check.entry.groups })
  }
  if (!requirement) return { ok: true, verified }
  if (verified.length === 0) {
    const unsigned = set.approvals.length
    return { ok: false, code: 'passkey_required', message: `${set.action} needs passkeys (${requirement.why}): the approver registry requires ${requirement.quorum} passkey-signed approval(s) from ${requirement.groups.join(', ')}, and ${set.holder} carries none${unsigned ? ` (${unsigned} approval(s) without a passkey signature do not count)` : ''}` }
  }
  const people = new Set(verified.filter((v) => v.groups.some((g) => requirement.groups.includes(g))).map((v) => v.person))
  // Break-glass: one approver alone, as the control plane's policy allowed — but only where the registry (signed by the
  // approvers key, not the dispatch key) lets one passkey stand for its quorum, and still with that person's own passkey.
  const alone = set.approvals.length === 1 && set.approvals[0]?.break_glass === true
  if (alone && requirement.quorum > 1 && requirement.break_glass !== true) {
    return {
      ok: false, code: 'quorum_not_met',
      message: `${set.action} is a break-glass run with one approval, but the approver registry (${requirement.rule}) asks ${requirement.quorum} passkey approvals and does not allow break-glass for it`,
    }
  }
  const quorum = alone ? 1 : requirement.quorum
  if (people.size < quorum) {
    const outside = verified.filter((v) => !v.groups.some((g) => requirement.groups.includes(g))).map((v) => v.by)
    return {
      ok: false, code: 'quorum_not_met',
      message: `${set.action} needs passkey approvals from ${requirement.quorum} distinct people in ${requirement.groups.join(', ')} (registry ${requirement.rule}); ${set.holder} has ${people.size}${outside.length ? ` (${outside.join(', ')} not in those groups)` : ''}`,
    }
  }
  return { ok: true, requirement, verified: verified.map(({ by, person, credential_id }) => ({ by, person, credential_id })) }
}
