/**
 * Passkey registrations in the `WRIT_PASSKEYS` bucket: what an operator
 * registered from the portal, waiting for an administrator to publish it in
 * the approver registry. A registration alone approves nothing.
 */
import { createHash } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { z } from 'zod'
import { withJetStreamRetry } from '../nats/index.js'

export const PASSKEYS_BUCKET = 'WRIT_PASSKEYS'

export const PasskeyRegistrationSchema = z.object({
  credential_id: z.string(),
  operator: z.string(),
  /** The operator's groups when it registered (used when groups come from the identity provider). */
  groups: z.array(z.string()),
  /** COSE public key, base64url. */
  public_key: z.string(),
  label: z.string(),
  aaguid: z.string(),
  transports: z.array(z.string()).default([]),
  backed_up: z.boolean(),
  registered_at: z.string(),
  /** How the operator had signed in (token, link, oidc). */
  signed_in_via: z.string(),
})
export type PasskeyRegistration = z.infer<typeof PasskeyRegistrationSchema>

const keyOf = (credentialId: string): string => createHash('sha256').update(credentialId).digest('hex')

export class PasskeyStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<PasskeyStore> {
    const kv = await withJetStreamRetry(`bucket ${PASSKEYS_BUCKET}`, () => new Kvm(nc).create(PASSKEYS_BUCKET, { replicas, history: 1 }))
    return new PasskeyStore(kv)
  }

  /** Stores a new registration; a credential id already registered is refused (false). */
  async add(r: PasskeyRegistration): Promise<boolean> {
    try { await this.kv.create(keyOf(r.credential_id), JSON.stringify(r)) } catch { return false }
    return true
  }

  async list(): Promise<PasskeyRegistration[]> {
    const out: PasskeyRegistration[] = []
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key)
      if (!e || e.operation !== 'PUT') continue
      const parsed = PasskeyRegistrationSchema.safeParse(JSON.parse(e.string()))
      if (parsed.success) out.push(parsed.data)
    }
    return out.sort((a, b) => a.registered_at.localeCompare(b.registered_at))
  }

  async listFor(operator: string): Promise<PasskeyRegistration[]> {
    return (await this.list()).filter((r) => r.operator === operator)
  }

  /** Removes `operator`'s registration; false when it has none with that id. */
  async remove(operator: string, credentialId: string): Promise<boolean> {
    const e = await this.kv.get(keyOf(credentialId))
    if (!e || e.operation !== 'PUT') return false
    const r = PasskeyRegistrationSchema.safeParse(JSON.parse(e.string()))
    if (!r.success || r.data.operator !== operator) return false
    await this.kv.delete(keyOf(credentialId))
    return true
  }
}
