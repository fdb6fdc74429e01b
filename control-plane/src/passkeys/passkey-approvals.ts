/**
 * Passkeys on the control plane: registrations, the published approver
 * registry, and the check of an approver's assertion when they approve — the
 * same check (from @writ/packs/passkeys) every runner repeats on the writ.
 */
import type { Logger } from 'pino'
import type { PasskeyAssertion } from '@writ/packs/protocol'
import {
  approverCredentials, passkeyRequirement, type ApproverEntry, type ApproverRegistry, type ApproverRegistryFile, type DeclaredAction, type RegistryMark,
} from '@writ/packs/approvers'
import { isRequester, verifyPasskeyAssertion } from '@writ/packs/passkeys'
import type { Risk, SideEffect } from '@writ/packs'
import type { Principal } from '../auth/index.js'
import { PasskeyRejected, SelfApproval } from '../http/index.js'
import type { PasskeyStore } from './passkey-store.js'
import type { RegistryRecord } from './registry-record.js'
import type { RelyingParty } from './relying-party.js'

/** What the check needs of a run (or of a standing grant: its id, its principal as requester, its digest as binding). */
export interface PasskeyRun {
  id: string, action: string, risk: Risk, requester: { id: string }, binding: string
  /** The refusal when the passkey's person is the requester (default: the run's WRIT_ERR_SELF_APPROVAL). */
  selfApproval?: () => Error
  /** What the assertion must sign, as a refusal names it (default: "this run's binding"). */
  signs?: string
}

/** An action's declared side effects, from the control plane's catalog (undefined: not in it any more). */
export type SideEffectsOf = (action: string) => readonly SideEffect[] | undefined

export class Passkeys {
  constructor(
    readonly rp: RelyingParty, readonly store: PasskeyStore, private readonly published: ApproverRegistryFile | undefined, private readonly log: Logger,
    private readonly sideEffectsOf: SideEffectsOf, private readonly record?: RegistryRecord,
  ) {}

  /** The newest registry any instance accepted (serial, issue time, digest), from the KV record; undefined before the first. */
  async accepted(): Promise<RegistryMark | undefined> {
    const a = await this.record?.get()
    if (!a) return undefined
    const { signed: _signed, ...mark } = a
    return mark
  }

  /** The published registry in force, if any. */
  get registry(): ApproverRegistry | undefined { return this.published?.current }

  /** Serial, issue time and digest of the registry in force (runners reporting a lower serial are behind). */
  get mark(): RegistryMark | undefined { return this.published?.mark }

  /** The run's recorded risk with the action's side effects; an action gone from the catalog counts as changing state. */
  private declared(action: string, risk: Risk): DeclaredAction {
    return { risk, side_effects: this.sideEffectsOf(action) ?? [] }
  }

  /** What approving an action takes under the published registry, or undefined when it needs no passkey. */
  requirement(action: string, risk: Risk) {
    const r = this.registry
    return r ? passkeyRequirement(r, action, this.declared(action, risk)) : undefined
  }

  /** The operator's passkeys in the published registry (the ones an approval can be signed with). */
  publishedCredentials(operator: string): ApproverEntry[] {
    const r = this.registry
    return r ? approverCredentials(r, operator) : []
  }

  /**
   * Checks `principal`'s assertion over the run's binding against the
   * published registry; throws a typed error saying what does not hold.
   */
  async verifyApproval(principal: Principal, run: PasskeyRun, assertion: PasskeyAssertion): Promise<void> {
    const registry = this.registry
    if (!registry) throw new PasskeyRejected('no approver registry is published yet, so no passkey can be checked; approve without one')
    const expired = this.published?.expired()
    if (expired !== undefined) throw new PasskeyRejected(`the published approver registry cannot check passkeys: ${expired}`)
    const check = await verifyPasskeyAssertion(assertion, principal.id, run.binding, registry, run.signs)
    if (!check.ok) {
      this.log.warn({ runId: run.id, operator: principal.id, code: check.code }, `passkey approval refused: ${check.message}`)
      throw new PasskeyRejected(check.code === 'unknown_approver' && this.registry?.approvers.every((a) => a.credential_id !== assertion.credential_id)
        ? `that passkey is not in the published approver registry: a registered passkey counts once an administrator publishes it (writ approvers export)`
        : check.message)
    }
    if (isRequester(check.entry, run.requester.id)) throw run.selfApproval?.() ?? new SelfApproval(run.id, `${run.requester.id} (the person behind ${principal.id})`)
    const need = passkeyRequirement(registry, run.action, this.declared(run.action, run.risk))
    if (need && !check.entry.groups.some((g) => need.groups.includes(g))) {
      throw new PasskeyRejected(`your passkey is published for ${check.entry.groups.join(', ') || 'no group'}; runners accept passkey approvals of ${run.action} only from ${need.groups.join(', ')}`)
    }
  }

  close(): void { this.published?.close() }
}
