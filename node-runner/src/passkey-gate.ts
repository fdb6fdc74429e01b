/**
 * Passkey-signed approvals on the runner: the approver registry (followed on
 * disk, never older than the newest this runner accepted — the journal keeps
 * that across restarts) and the check a verified writ must also pass. Both
 * modules are loaded only when the runner is configured with a registry, and
 * the check's code (with @simplewebauthn/server) only on the first writ that
 * needs it, so a runner that never sees one keeps its small idle memory.
 */
import type { Logger } from 'pino'
import type { TrustedKey } from '@writ/packs/protocol'
import type { AcceptedRegistry, ApproverRegistry, ApproverRegistryFile, passkeyRequirement, RegistryMark } from '@writ/packs/approvers'
import type { PasskeyVerdict } from '@writ/packs/passkeys'
import type { AcceptedWrit } from './run-execution.js'

export interface PasskeyGate {
  /** The registry in force. */
  readonly registry: ApproverRegistry
  /** Serial, issue time and digest of the registry in force (the heartbeat reports it). */
  readonly mark: RegistryMark
  /** Whether this writ must pass the check: its action (risk and side effects from this runner's own catalog, never the writ) needs passkeys, or it carries some. */
  needsCheck(v: AcceptedWrit): boolean
  check(v: AcceptedWrit, registry: ApproverRegistry): Promise<PasskeyVerdict>
  close(): void
}

/** Where the runner keeps the newest registry it accepted (its journal). */
export interface RegistryMemory {
  /** What was kept, unparsed (undefined on a first start). */
  readonly approverRegistry: Record<string, unknown> | undefined
  recordRegistry(accepted: AcceptedRegistry): Promise<void>
}

/**
 * Opens the registry (an ApproverRegistryError says what is wrong with it,
 * an older one than the journal's included — unless the journal's own copy
 * still verifies, which then stays in force) and waits until a newly
 * accepted one is on disk in the journal.
 */
export async function openPasskeyGate(
  file: string, keys: { approvers: TrustedKey[], dispatch: readonly TrustedKey[] }, log: Logger, reloadMs: number, memory: RegistryMemory,
): Promise<PasskeyGate> {
  const approvers = await import('@writ/packs/approvers')
  let accepted: AcceptedRegistry | undefined
  if (memory.approverRegistry !== undefined) {
    const parsed = approvers.AcceptedRegistrySchema.safeParse(memory.approverRegistry)
    if (!parsed.success) throw new approvers.ApproverRegistryError(`the journal's record of the approver registry accepted before is not readable (${parsed.error.issues[0]?.message ?? 'invalid'}); it is what keeps an older registry out, so the runner does not start without it`)
    accepted = parsed.data
  }
  const followed: ApproverRegistryFile = approvers.ApproverRegistryFile.open(file, keys, log, {
    reloadMs, mustExist: true, accepted, onAccepted: (a) => memory.recordRegistry(a),
  })
  await followed.recorded()
  const requirement: typeof passkeyRequirement = approvers.passkeyRequirement
  let checker: Promise<typeof import('@writ/packs/passkeys')> | undefined
  return {
    get registry() { return followed.current as ApproverRegistry },
    get mark() { return followed.mark as RegistryMark },
    needsCheck: (v) => requirement(followed.current as ApproverRegistry, v.writ.action, v.action.spec) !== undefined
      || v.writ.approvals.some((a) => a.passkey) || (v.writ.grant?.statement.approvals.some((a) => a.passkey) ?? false),
    check: async (v, registry) => {
      // A registry past its expires_at vouches for nobody; the one in force is kept so the refusal can say which.
      const expired = followed.expired()
      if (expired !== undefined) return { ok: false, code: 'registry_expired', message: `the approver registry in force cannot check passkey approvals: ${expired}` }
      checker ??= import('@writ/packs/passkeys')
      const check = await checker
      // A grant's approvals stand for the run's: their passkeys sign the grant's digest.
      const { grant } = v.writ
      return grant ? check.checkGrantPasskeys({ ...v.writ, grant }, v.action.spec, registry) : check.checkPasskeyApprovals(v.writ, v.action.spec, registry, v.binding)
    },
    close: () => followed.close(),
  }
}
