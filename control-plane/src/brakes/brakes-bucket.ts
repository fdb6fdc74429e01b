/** The `WRIT_BRAKES` bucket: the freeze (one key every replica watches) and each principal's budget ledger. */
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { withJetStreamRetry } from '../nats/index.js'

export const BRAKES_BUCKET = 'WRIT_BRAKES'

export function openBrakesBucket(nc: NatsConnection, replicas: number): Promise<KV> {
  return withJetStreamRetry(`bucket ${BRAKES_BUCKET}`, () => new Kvm(nc).create(BRAKES_BUCKET, { replicas, history: 5 }))
}

/** A compare-and-swap lost to another writer (the revision moved): read again and retry. */
export function isRevisionConflict(err: unknown): boolean {
  const e = err as { message?: string, code?: number | string, api_error?: { err_code?: number } }
  return e?.code === 10071 || /wrong last sequence|key exists/i.test(e?.message ?? '') || e?.api_error?.err_code === 10071
}
