/**
 * The Slack outbox: a notice is published into the `WRIT_NOTIFY` work queue
 * and delivered from there by whichever instance pulls it
 * (slack-delivery.ts), so it outlives the instance that made it. Enqueueing
 * never blocks a run; a notice the outbox cannot take (full, or NATS gone
 * past the retry budget) is logged and counted as dropped.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { Logger } from 'pino'
import { notifySubject, retryTransient } from '../nats/index.js'
import type { SlackNotice } from './slack-notice.js'

/** How long a publish is retried while JetStream is briefly unavailable. */
const PUBLISH_BUDGET_MS = 10_000

export class SlackOutbox {
  private readonly js: JetStreamClient
  private readonly inFlight = new Set<Promise<void>>()

  constructor(nc: NatsConnection, private readonly log: Logger, private readonly dropped: Counter<'reason'>) {
    this.js = jetstream(nc)
  }

  enqueue(notice: SlackNotice): void {
    const p = retryTransient(() => this.js.publish(notifySubject(notice.run_id), JSON.stringify(notice), { msgID: notice.id }), PUBLISH_BUDGET_MS).then(() => {}, (err: unknown) => {
      const reason = /maximum messages/i.test((err as Error).message ?? '') ? 'outbox_full' : 'outbox_unavailable'
      this.dropped.inc({ reason })
      this.log.error({ runId: notice.run_id, kind: notice.kind, reason, err }, 'Slack notice could not be queued (the run is unaffected)')
    })
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p))
  }

  /** Waits (up to `graceMs`) for notices still being queued. */
  async close(graceMs = 2000): Promise<void> {
    if (this.inFlight.size === 0) return
    await Promise.race([Promise.all(this.inFlight), new Promise((r) => setTimeout(r, graceMs).unref())])
  }
}
