/**
 * Delivers the Slack outbox (`WRIT_NOTIFY`) to one webhook, off the request
 * path: a run never waits on Slack. Every instance pulls from one durable
 * consumer, so a notice is posted by whichever instance holds it, and one
 * that a killed instance held is delivered by another after `ackWaitMs`. A
 * notice is acknowledged only once Slack accepted it (or refused it for
 * good).
 *
 * Notices held here take fair turns per requester (fair-queue.ts); a
 * requester's pile goes out as one summary linking to the inbox. A failed
 * post is handed back to the stream with a delay — exponential backoff, or a
 * 429's `Retry-After` (Slack allows about one message a second per webhook)
 * — and posting pauses as long. A notice is given up on its `maxAttempts`th
 * delivery. One never posted is logged and counted
 * (`writ_slack_notices_dropped_total{reason}`).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { Logger } from 'pino'
import { NOTIFY_CONSUMER, NOTIFY_STREAM, NOTIFY_SUBJECTS, notifySubject, withJetStreamRetry } from '../nats/index.js'
import { FairQueue, type Turn } from './fair-queue.js'
import { summaryMessage, type SlackMessage } from './slack-message.js'
import { SlackNoticeSchema, type SlackNotice } from './slack-notice.js'
import type { PostOutcome, SlackWebhook } from './slack-webhook.js'

export interface SlackDeliveryOptions {
  /** Deliveries of one notice before it is given up. */
  maxAttempts: number
  /** First backoff after a failure; doubles per attempt, capped at a minute. */
  retryBaseMs: number
  /** How long a notice an instance holds stays its own without a sign of life. */
  ackWaitMs: number
  /** More notices than this waiting from one requester go out as one summary. */
  coalesceAfter: number
  /** The portal inbox a summary links to. */
  inboxUrl: string
  log: Logger
  dropped: Counter<'reason'>
  /** writ_slack_post_failures_total{reason}: every failed post, retried or not. */
  failures: Counter<'reason'>
  coalesced: Counter
}

interface Held { seq: number, notice: SlackNotice, msg: JsMsg }

const MAX_BACKOFF_MS = 60_000
/** How soon a run's outcome looks again for its earlier notice to be delivered. */
const ORDER_RECHECK_MS = 500
/** Notices one instance holds unacknowledged at most (the rest wait in the stream). */
const MAX_HELD = 10_000

export class SlackDelivery {
  private readonly queue: FairQueue<Held>
  private messages: ConsumerMessages | undefined
  private stopped = false
  private pausedUntil = 0
  private inFlight: Held[] = []
  private pumping: Promise<void> | undefined
  private keepAlive: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined

  constructor(private readonly nc: NatsConnection, private readonly hook: SlackWebhook, private readonly opts: SlackDeliveryOptions) {
    this.queue = new FairQueue(opts.coalesceAfter)
  }

  /** Makes sure the shared consumer exists (with this configuration), then delivers until closed. */
  async start(): Promise<void> {
    await withJetStreamRetry(`consumer ${NOTIFY_CONSUMER}`, () => this.ensureConsumer())
    void this.supervise()
    this.pumping = this.pump()
    // A held notice says it is still being worked on, so the stream keeps it ours for as long as we live.
    this.keepAlive = setInterval(() => { for (const h of [...this.queue.items(), ...this.inFlight]) h.msg.working() }, Math.max(200, this.opts.ackWaitMs / 3))
    this.keepAlive.unref()
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = await jetstreamManager(this.nc)
    const settings = { ack_wait: this.opts.ackWaitMs * 1_000_000, max_deliver: this.opts.maxAttempts + 1 }
    try {
      const info = await jsm.consumers.info(NOTIFY_STREAM, NOTIFY_CONSUMER)
      if (info.config.ack_wait !== settings.ack_wait || info.config.max_deliver !== settings.max_deliver) await jsm.consumers.update(NOTIFY_STREAM, NOTIFY_CONSUMER, settings)
    } catch (err) {
      if ((err as { code?: number }).code !== 10014 && !/consumer not found/i.test((err as Error).message)) throw err
      await jsm.consumers.add(NOTIFY_STREAM, {
        durable_name: NOTIFY_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: NOTIFY_SUBJECTS,
        max_ack_pending: MAX_HELD, ...settings,
      }).catch(async (addErr: unknown) => {
        // Another instance created it first.
        await jsm.consumers.info(NOTIFY_STREAM, NOTIFY_CONSUMER).catch(() => { throw addErr })
      })
    }
  }

  /** Keeps pulling across server losses until closed. */
  private async supervise(): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await jetstream(this.nc).consumers.get(NOTIFY_STREAM, NOTIFY_CONSUMER)
        this.messages = await consumer.consume({ max_messages: 256, expires: 5000 })
        if (this.stopped) { this.messages.stop(); break }
        for await (const m of this.messages) this.receive(m)
      } catch (err) {
        if (!this.stopped) this.opts.log.warn({ err }, 'Slack outbox consumer interrupted; resuming')
      }
      // A connection closed under us (a failed start) ends delivery here.
      if (this.nc.isClosed()) break
      if (!this.stopped) await new Promise((r) => setTimeout(r, 500))
    }
  }

  private receive(m: JsMsg): void {
    let json: unknown
    try { json = m.json() } catch { json = undefined }
    const parsed = SlackNoticeSchema.safeParse(json)
    if (!parsed.success) {
      m.term()
      this.opts.dropped.inc({ reason: 'malformed' })
      this.opts.log.warn({ seq: m.seq }, 'dropped a malformed Slack notice from the outbox')
      return
    }
    // Its last attempt was made by an instance that died before settling it.
    if (m.info.deliveryCount > this.opts.maxAttempts) {
      m.term()
      this.drop([parsed.data], 'max_attempts', 'Slack message given up after its last attempt (the run is unaffected)', { attempts: m.info.deliveryCount - 1 })
      return
    }
    this.queue.add(parsed.data.requester, { seq: m.seq, notice: parsed.data, msg: m })
    this.wake?.()
  }

  private async pump(): Promise<void> {
    while (!this.stopped) {
      const now = Date.now()
      if (this.pausedUntil > now) { await this.sleep(this.pausedUntil - now); continue }
      const turn = this.queue.next(now)
      if (!turn) {
        const release = this.queue.nextRelease()
        await this.sleep(release === undefined ? undefined : Math.max(1, release - now))
        continue
      }
      if (await this.waitsForEarlier(turn)) { this.queue.putBack(turn, Date.now() + ORDER_RECHECK_MS); continue }
      this.inFlight = turn.items
      const outcome = await this.hook.post(this.messageFor(turn))
      this.inFlight = []
      await this.settle(turn, outcome)
    }
  }

  /**
   * Whether a notice of this turn is about a run whose earlier notice is still
   * in the outbox: one held by an instance that died is redelivered only after
   * `ackWaitMs`, and a run's outcome must never reach Slack before its request.
   */
  private async waitsForEarlier(turn: Turn<Held>): Promise<boolean> {
    for (const h of turn.items) {
      if (h.notice.kind === 'pending') continue
      const first = await this.jsm().then((jsm) => jsm.direct.getMessage(NOTIFY_STREAM, { next_by_subj: notifySubject(h.notice.run_id), seq: 1 })).catch(() => null)
      if (first && first.seq < h.seq) return true
    }
    return false
  }

  private manager: Promise<JetStreamManager> | undefined
  private jsm(): Promise<JetStreamManager> {
    this.manager ??= jetstreamManager(this.nc)
    return this.manager
  }

  private messageFor(turn: Turn<Held>): SlackMessage {
    const [only] = turn.items
    if (turn.items.length === 1 && only) return only.notice.message
    return summaryMessage(turn.requester, turn.items.map((h) => h.notice), this.opts.inboxUrl)
  }

  /** Acknowledges, gives up or hands back a turn's notices after its post. */
  private async settle(turn: Turn<Held>, outcome: PostOutcome): Promise<void> {
    const notices = turn.items.map((h) => h.notice)
    const fields = { runIds: notices.slice(0, 20).map((n) => n.run_id), notices: notices.length, webhook: this.hook.host }
    if (outcome.kind === 'delivered') {
      const confirmed = await Promise.all(turn.items.map((h) => h.msg.ackAck().catch(() => false)))
      if (confirmed.includes(false)) this.opts.log.warn(fields, 'Slack has the message, but the outbox did not confirm its removal: it may be posted again')
      if (notices.length > 1) this.opts.coalesced.inc(notices.length)
      this.opts.log.debug(fields, notices.length > 1 ? 'Slack summary delivered' : 'Slack message delivered')
      return
    }
    this.opts.failures.inc({ reason: outcome.kind === 'refused' ? 'refused' : outcome.reason })
    if (outcome.kind === 'refused') {
      for (const h of turn.items) h.msg.term()
      this.drop(notices, 'refused', 'Slack refused the message', { status: outcome.status, answer: outcome.answer })
      return
    }
    const attempt = Math.max(...turn.items.map((h) => h.msg.info.deliveryCount))
    if (outcome.reason === 'rate_limited') this.opts.log.warn({ ...fields, retryAfterMs: outcome.retryAfterMs, attempt }, 'Slack rate limit; waiting as told')
    else if (outcome.reason === 'server_error') this.opts.log.warn({ ...fields, status: outcome.status, attempt }, 'Slack answered with a server error; retrying')
    else this.opts.log.warn({ ...fields, err: outcome.error, attempt }, 'cannot reach Slack; retrying')
    const backoff = Math.min(MAX_BACKOFF_MS, this.opts.retryBaseMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4)
    const delay = Math.round(outcome.reason === 'rate_limited' ? outcome.retryAfterMs ?? backoff : backoff)
    this.pausedUntil = Date.now() + delay
    const spent = turn.items.filter((h) => h.msg.info.deliveryCount >= this.opts.maxAttempts)
    for (const h of spent) h.msg.term()
    if (spent.length > 0) this.drop(spent.map((h) => h.notice), 'max_attempts', 'Slack message given up after its last attempt (the run is unaffected)', { attempts: attempt })
    const again = turn.items.filter((h) => h.msg.info.deliveryCount < this.opts.maxAttempts)
    for (const h of again) h.msg.nak(delay)
    this.queue.block(turn.requester, again.map((h) => h.seq), Date.now() + delay + this.opts.ackWaitMs)
  }

  private drop(notices: readonly SlackNotice[], reason: string, message: string, extra: Record<string, unknown> = {}): void {
    this.opts.dropped.inc({ reason }, notices.length)
    this.opts.log.error({ runIds: notices.slice(0, 20).map((n) => n.run_id), notices: notices.length, webhook: this.hook.host, reason, ...extra }, message)
  }

  /** Waits `ms`, or until woken (a notice arrived, or closing); without `ms`, only until woken. */
  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => { clearTimeout(timer); if (this.wake === done) this.wake = undefined; resolve() }
      if (ms !== undefined) timer = setTimeout(done, ms)
      this.wake = done
    })
  }

  /**
   * Stops pulling and posting; waits up to `graceMs` for a post in flight.
   * Notices still held go back to the stream at once, for another instance.
   */
  async close(graceMs = 2000): Promise<void> {
    this.stopped = true
    clearInterval(this.keepAlive)
    this.messages?.stop()
    this.wake?.()
    if (this.pumping) await Promise.race([this.pumping, new Promise((r) => setTimeout(r, graceMs).unref())])
    const left = this.queue.drain()
    for (const h of left) h.msg.nak()
    if (left.length > 0) this.opts.log.info({ notices: left.length, webhook: this.hook.host }, 'Slack notices still waiting go back to the outbox for another instance')
  }
}
