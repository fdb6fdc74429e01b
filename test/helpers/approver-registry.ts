/**
 * Publishing an approver registry the way an administrator does (signed with
 * the approvers key, written whole by rename like a Nomad template), and the
 * software passkeys of the people in it.
 */
import { renameSync, writeFileSync } from 'node:fs'
import type { SigningKey } from '@writ/packs/protocol'
import { signApproverRegistry, type ApproverRegistryInput } from '@writ/packs/approvers'
import { createSoftwareAuthenticator, type SoftwareAuthenticator } from './software-authenticator.js'

export const TEST_RP = { id: 'writ.example.test', origins: ['https://writ.example.test'] }

export interface TestApprover { operator: string, person?: string, principals?: string[], groups: string[], passkey: SoftwareAuthenticator }

export function testApprover(operator: string, groups: string[], extra: { person?: string, principals?: string[] } = {}): TestApprover {
  return { operator, groups, ...extra, passkey: createSoftwareAuthenticator({ rpId: TEST_RP.id, origin: TEST_RP.origins[0] as string }) }
}

export function registryOf(approvers: TestApprover[], require: ApproverRegistryInput['require'], issuedAt = new Date()): ApproverRegistryInput {
  return {
    v: 1, kind: 'writ.approver-registry', issued_at: issuedAt.toISOString(), relying_party: TEST_RP, require,
    approvers: approvers.map((a) => ({
      operator: a.operator, person: a.person ?? a.operator, principals: a.principals ?? [a.operator], groups: a.groups,
      credential_id: a.passkey.credentialId, public_key: a.passkey.publicKey, registered_at: issuedAt.toISOString(),
    })),
  }
}

/** Signs and writes the registry in one rename, so a reader never sees half a file. */
export function publishRegistry(file: string, registry: ApproverRegistryInput, key: SigningKey): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(signApproverRegistry(registry, key), null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

/** The registrations file `writ approvers list --json` saves, for an offline `writ approvers export --from`. */
export function registrationsFile(file: string, approvers: TestApprover[], dispatchKeyId: string): void {
  const at = new Date(Date.now() - 3600_000).toISOString()
  writeFileSync(file, JSON.stringify({
    relying_party: TEST_RP, dispatch_key_id: dispatchKeyId,
    registrations: approvers.map((a) => ({
      credential_id: a.passkey.credentialId, operator: a.operator, operator_configured: true, person: a.person ?? a.operator,
      principals: a.principals ?? [a.operator], groups: a.groups, public_key: a.passkey.publicKey, label: `${a.operator}'s key`,
      registered_at: at, signed_in_via: 'token',
    })),
  }))
}
