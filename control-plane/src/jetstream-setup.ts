/**
 * Creates the streams and bucket the system lives on. Idempotent: two control
 * planes booting at once both succeed, and a later boot leaves data alone.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager, type StreamConfig } from '@nats-io/jetstream'
import { streams } from '@writ/packs/protocol'
import { parseDuration } from '@writ/packs'

export const AUDIT_STREAM = 'WRIT_AUDIT'
export const AUDIT_SUBJECT = 'writ.v1.audit.event'
/** Durable consumer shared by every control-plane instance (work is split, never repeated). */
export const RESULTS_CONSUMER = 'writ-control-plane-results'

const STREAM_IN_USE = 10058

export class JetStreamSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'JetStreamSetupError' }
}

export interface JetStreamLayout { replicas: number, auditMaxAge?: string | undefined, resultsMaxAge: string }

const ns = (d: string | undefined): number => (d ? (parseDuration(d) ?? 0) * 1_000_000 : 0)

export function streamConfigs(layout: JetStreamLayout): Array<Partial<StreamConfig> & { name: string }> {
  return [
    { name: streams.results.name, subjects: [...streams.results.subjects], num_replicas: layout.replicas, max_age: ns(layout.resultsMaxAge), duplicate_window: 120 * 1_000_000_000 },
    { name: streams.events.name, subjects: [...streams.events.subjects], num_replicas: layout.replicas, max_age: ns(layout.resultsMaxAge) },
    // The audit trail keeps everything unless told otherwise; deleting from it is what verify catches.
    { name: AUDIT_STREAM, subjects: [AUDIT_SUBJECT], num_replicas: layout.replicas, max_age: ns(layout.auditMaxAge), duplicate_window: 120 * 1_000_000_000 },
  ]
}

/** Ensures WRIT_RESULTS, WRIT_EVENTS and WRIT_AUDIT exist (the runs bucket is opened by RunStore). */
export async function ensureStreams(nc: NatsConnection, layout: JetStreamLayout): Promise<void> {
  const jsm = await jetstreamManager(nc)
  for (const cfg of streamConfigs(layout)) {
    try {
      await jsm.streams.info(cfg.name)
      continue
    } catch (err) {
      if ((err as { code?: number }).code !== 10059) throw new JetStreamSetupError(`cannot read stream ${cfg.name}`, { cause: err })
    }
    try {
      await jsm.streams.add(cfg)
    } catch (err) {
      // Another instance created it between our look and our add.
      if ((err as { code?: number }).code === STREAM_IN_USE) continue
      throw new JetStreamSetupError(`cannot create stream ${cfg.name} with ${layout.replicas} replica(s)`, { cause: err })
    }
  }
}
