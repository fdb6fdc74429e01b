/**
 * The newest approver registry any control-plane instance accepted, in the
 * `WRIT_APPROVER_REGISTRY` bucket: read at start, so an instance restarted
 * over a registry file rolled back to an older one refuses it (and keeps the
 * one recorded here in force), and raised — never lowered — by each instance
 * that accepts a newer one. `writ approvers export` mints its next serial
 * above it.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { AcceptedRegistrySchema, isNewer, type AcceptedRegistry } from '@writ/packs/approvers'
import { withJetStreamRetry } from '../nats/index.js'

export const REGISTRY_BUCKET = 'WRIT_APPROVER_REGISTRY'
const KEY = 'accepted'
/** Under NATS's default 1 MiB message limit; a larger registry is recorded by its mark alone. */
const MAX_RECORD_BYTES = 512 * 1024

export class RegistryRecord {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<RegistryRecord> {
    const kv = await withJetStreamRetry(`bucket ${REGISTRY_BUCKET}`, () => new Kvm(nc).create(REGISTRY_BUCKET, { replicas, history: 1 }))
    return new RegistryRecord(kv)
  }

  /** The newest registry accepted so far, or undefined before the first. A record that does not parse is an error (it guards against rollback). */
  async get(): Promise<AcceptedRegistry | undefined> {
    return (await this.entry())?.accepted
  }

  private async entry(): Promise<{ accepted: AcceptedRegistry, revision: number } | undefined> {
    const e = await this.kv.get(KEY)
    if (!e || e.operation !== 'PUT') return undefined
    let json: unknown
    try { json = JSON.parse(e.string()) } catch { json = undefined }
    const parsed = AcceptedRegistrySchema.safeParse(json)
    if (!parsed.success) throw new Error(`the ${REGISTRY_BUCKET} record of the approver registry accepted before is not readable`)
    return { accepted: parsed.data, revision: e.revision }
  }

  /** Records `accepted` unless a newer one is recorded already (another instance may have raised it meanwhile). */
  async raise(accepted: AcceptedRegistry): Promise<void> {
    let value = JSON.stringify(accepted)
    if (value.length > MAX_RECORD_BYTES) {
      const { signed: _dropped, ...mark } = accepted
      value = JSON.stringify(mark)
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.entry()
      if (current && !isNewer(accepted, current.accepted)) return
      try {
        if (current) await this.kv.update(KEY, value, current.revision)
        else await this.kv.create(KEY, value)
        return
      } catch {
        // Another instance wrote first: read again and compare.
      }
    }
    throw new Error(`could not record the approver registry in ${REGISTRY_BUCKET}: it kept changing`)
  }
}
