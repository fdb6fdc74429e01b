/**
 * Passkey-signed approvals on the runner: the approver registry (followed on
 * disk) and the check a verified writ must also pass. Both modules are
 * loaded only when the runner is configured with a registry, and the check's
 * code (with @simplewebauthn/server) only on the first writ that needs it, so
 * a runner that never sees one keeps its small idle memory.
 */
import type { Logger } from 'pino'
import type { TrustedKey } from '@writ/packs/protocol'
import type { ApproverRegistry, ApproverRegistryFile, passkeyRequirement } from '@writ/packs/approvers'
import type { PasskeyVerdict } from '@writ/packs/passkeys'
import type { AcceptedWrit } from './run-execution.js'

export interface PasskeyGate {
  /** The registry in force. */
  readonly registry: ApproverRegistry
  /** Whether this writ must pass the check: its action (risk and side effects from this runner's own catalog, never the writ) needs passkeys, or it carries some. */
  needsCheck(v: AcceptedWrit): boolean
  check(v: AcceptedWrit, registry: ApproverRegistry): Promise<PasskeyVerdict>
  close(): void
}

/** Opens the registry (an ApproverRegistryError says what is wrong with it). */
export async function openPasskeyGate(file: string, keys: { approvers: TrustedKey[], dispatch: readonly TrustedKey[] }, log: Logger, reloadMs: number): Promise<PasskeyGate> {
  const approvers = await import('@writ/packs/approvers')
  const followed: ApproverRegistryFile = approvers.ApproverRegistryFile.open(file, keys, log, { reloadMs, mustExist: true })
  const requirement: typeof passkeyRequirement = approvers.passkeyRequirement
  let checker: Promise<typeof import('@writ/packs/passkeys')> | undefined
  return {
    get registry() { return followed.current as ApproverRegistry },
    needsCheck: (v) => requirement(followed.current as ApproverRegistry, v.writ.action, v.action.spec) !== undefined || v.writ.approvals.some((a) => a.passkey),
    check: async (v, registry) => {
      checker ??= import('@writ/packs/passkeys')
      return (await checker).checkPasskeyApprovals(v.writ, v.action.spec, registry)
    },
    close: () => followed.close(),
  }
}
