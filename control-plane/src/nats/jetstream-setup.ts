/**
 * Creates the streams and bucket the system lives on. Idempotent: two control
 * planes booting at once both succeed, and a later boot leaves data alone.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { DiscardPolicy, RetentionPolicy, jetstreamManager, type StreamConfig } from '@nats-io/jetstream'
import { streams } from '@writ/packs/protocol'
import { parseDuration } from '@writ/packs'

export const AUDIT_STREAM = 'WRIT_AUDIT'
export const AUDIT_SUBJECT = 'writ.v1.audit.event'
/** Durable consumer shared by every control-plane instance (work is split, never repeated). */
export const RESULTS_CONSUMER = 'writ-control-plane-results'
/** The Slack outbox: notices wait here (a work queue) until an instance has posted them. */
/** Each plan's progress log: dispatches and results, a batch of targets a message (plans/plan-store.ts). */
export const PLAN_LOG_STREAM = 'WRIT_PLAN_LOG'
export const PLAN_LOG_SUBJECTS = 'writ.v1.plans.>'
export const planLogSubject = (planId: string, kind: 'dispatch' | 'results'): string => `writ.v1.plans.${planId}.${kind}`

export const NOTIFY_STREAM = 'WRIT_NOTIFY'
export const NOTIFY_SUBJECT = 'writ.v1.notify.slack'
/** Every run's notices: one subject per run, so "is an earlier notice of this run still undelivered?" is one lookup. */
export const NOTIFY_SUBJECTS = `${NOTIFY_SUBJECT}.*`
/** The subject of one run's notices (a run id is one subject token). */
export const notifySubject = (runId: string): string => `${NOTIFY_SUBJECT}.${runId}`
/** Durable consumer every instance delivers the outbox from. */
export const NOTIFY_CONSUMER = 'writ-control-plane-slack'
/** Notices the outbox holds at most; past it a new notice is refused (and counted as dropped) rather than an old one lost. */
export const NOTIFY_MAX_MSGS = 100_000

const STREAM_IN_USE = 10058
const STREAM_NOT_FOUND = 10059
const INSUFFICIENT_RESOURCES = 10023
const REPLICAS_NOT_SUPPORTED = 10074

export class JetStreamSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'JetStreamSetupError' }
}

export interface JetStreamLayout { replicas: number, auditMaxAge?: string | undefined, resultsMaxAge: string }

const ns = (d: string | undefined): number => (d ? (parseDuration(d) ?? 0) * 1_000_000 : 0)
/** Two minutes of duplicate detection, never longer than the stream keeps messages (the server refuses that). */
const dupeWindow = (maxAgeNs: number): number => (maxAgeNs > 0 ? Math.min(maxAgeNs, 120 * 1_000_000_000) : 120 * 1_000_000_000)

export function streamConfigs(layout: JetStreamLayout): Array<Partial<StreamConfig> & { name: string }> {
  return [
    { name: streams.results.name, subjects: [...streams.results.subjects], num_replicas: layout.replicas, max_age: ns(layout.resultsMaxAge), duplicate_window: dupeWindow(ns(layout.resultsMaxAge)) },
    { name: streams.events.name, subjects: [...streams.events.subjects], num_replicas: layout.replicas, max_age: ns(layout.resultsMaxAge) },
    { name: PLAN_LOG_STREAM, subjects: [PLAN_LOG_SUBJECTS], num_replicas: layout.replicas, max_age: ns(layout.resultsMaxAge) },
    // The audit trail keeps everything unless told otherwise, and refuses message deletes and purges
    // (a server lets neither be switched off again); what is left — recreating the stream — verify catches.
    { name: AUDIT_STREAM, subjects: [AUDIT_SUBJECT], num_replicas: layout.replicas, max_age: ns(layout.auditMaxAge), duplicate_window: dupeWindow(ns(layout.auditMaxAge)), deny_delete: true, deny_purge: true },
    // A notice is removed once acknowledged (posted to Slack, or given up); its id dedupes a repeated enqueue.
    {
      name: NOTIFY_STREAM, subjects: [NOTIFY_SUBJECTS], num_replicas: layout.replicas, retention: RetentionPolicy.Workqueue,
      max_msgs: NOTIFY_MAX_MSGS, discard: DiscardPolicy.New, duplicate_window: dupeWindow(0),
      // Direct gets answer "is an earlier notice of this run still here?" (next_by_subj) for delivery order.
      allow_direct: true,
    },
  ]
}

/**
 * Retries `fn` while JetStream is transiently unavailable (a cluster electing
 * its meta leader answers with timeouts or 503s for a few seconds).
 */
export async function withJetStreamRetry<T>(what: string, fn: () => Promise<T>, budgetMs = 30_000): Promise<T> {
  const deadline = Date.now() + budgetMs
  for (let attempt = 0; ; attempt++) {
    try { return await fn() } catch (err) {
      if (err instanceof JetStreamSetupError || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** Math.min(attempt, 4))))
    }
  }
}

/** Ensures WRIT_RESULTS, WRIT_EVENTS, WRIT_AUDIT and WRIT_NOTIFY exist (the runs bucket is opened by RunStore). */
export async function ensureStreams(nc: NatsConnection, layout: JetStreamLayout): Promise<void> {
  const jsm = await withJetStreamRetry('JetStream', () => jetstreamManager(nc))
  for (const cfg of streamConfigs(layout)) {
    await withJetStreamRetry(`stream ${cfg.name}`, () => ensureStream(jsm, cfg, layout)).catch((err: unknown) => {
      if (err instanceof JetStreamSetupError) throw err
      throw new JetStreamSetupError(`cannot create or read stream ${cfg.name} (nats.servers, jetstream.replicas)`, { cause: err })
    })
  }
}

/** Settings an existing stream is brought to on boot (a deployment made before they existed gets them). */
const ENFORCED: ReadonlyArray<'deny_delete' | 'deny_purge'> = ['deny_delete', 'deny_purge']

async function ensureStream(jsm: Awaited<ReturnType<typeof jetstreamManager>>, cfg: Partial<StreamConfig> & { name: string }, layout: JetStreamLayout): Promise<void> {
  {
    try {
      const info = await jsm.streams.info(cfg.name)
      const missing = ENFORCED.filter((k) => cfg[k] === true && info.config[k] !== true)
      if (missing.length > 0) await jsm.streams.update(cfg.name, { ...info.config, ...Object.fromEntries(missing.map((k) => [k, true])) })
      return
    } catch (err) {
      if ((err as { code?: number }).code !== STREAM_NOT_FOUND) throw err
    }
    try {
      await jsm.streams.add(cfg)
    } catch (err) {
      // Another instance created it between our look and our add.
      if ((err as { code?: number }).code === STREAM_IN_USE) return
      // Too few servers for the replicas asked for is a configuration error, not a transient one.
      if ([INSUFFICIENT_RESOURCES, REPLICAS_NOT_SUPPORTED].includes((err as { code?: number }).code ?? 0)) throw new JetStreamSetupError(`cannot create stream ${cfg.name} with ${layout.replicas} replica(s) (setting jetstream.replicas)`, { cause: err })
      throw err
    }
  }
}
