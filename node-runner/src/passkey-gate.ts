/**
 * Whether a verified writ must also pass the passkey check, and that check.
 * The check's code (with @simplewebauthn/server) is loaded on the first writ
 * that needs it, so a runner that never sees one keeps its small idle memory.
 */
import { passkeyRequirement, type ApproverRegistry } from '@writ/packs/protocol'
import type { PasskeyVerdict } from '@writ/packs/passkeys'
import type { AcceptedWrit } from './run-execution.js'

/** The action's risk comes from this runner's own catalog, never from the writ. */
export function needsPasskeyCheck(v: AcceptedWrit, registry: ApproverRegistry): boolean {
  return passkeyRequirement(registry, v.writ.action, v.action.spec.risk) !== undefined || v.writ.approvals.some((a) => a.passkey)
}

let checker: Promise<typeof import('@writ/packs/passkeys')> | undefined

export async function checkWritPasskeys(v: AcceptedWrit, registry: ApproverRegistry): Promise<PasskeyVerdict> {
  checker ??= import('@writ/packs/passkeys')
  const { checkPasskeyApprovals } = await checker
  return checkPasskeyApprovals(v.writ, v.action.spec.risk, registry)
}
