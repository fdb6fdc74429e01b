/**
 * Posts notices to one Slack webhook off the request path: a run never waits
 * on Slack. Notices take fair turns per requester (fair-queue.ts), and a
 * requester with a pile of notices gets one summary that links to the inbox.
 * A failed post waits — exponential backoff, or as long as a 429's
 * `Retry-After` says (Slack allows about one message a second per webhook) —
 * and is tried again, up to `maxAttempts`. A notice that is never posted is
 * logged and counted (`writ_slack_notices_dropped_total{reason}`).
 */
import type { Counter } from 'prom-client'
import type { Logger } from 'pino'
import { FairQueue, type Turn } from './fair-queue.js'
import { summaryMessage, type SlackMessage } from './slack-message.js'
import type { PostOutcome, SlackWebhook } from './slack-webhook.js'

/** One thing to tell Slack about one run. */
export interface Notice {
  /** `pending` (waits for a person) or what became of it (`decided`). */
  kind: string
  requester: string
  runId: string
  action: string
  message: SlackMessage
}

export interface SlackDeliveryOptions {
  maxAttempts: number
  /** First backoff after a failure; doubles per attempt, capped at a minute. */
  retryBaseMs: number
  /** More notices than this waiting from one requester go out as one summary. */
  coalesceAfter: number
  /** The portal inbox a summary links to. */
  inboxUrl: string
  log: Logger
  dropped: Counter<'reason'>
  coalesced: Counter
}

interface Held { notice: Notice, attempts: number }

const MAX_QUEUE = 1000
const MAX_BACKOFF_MS = 60_000

export class SlackDelivery {
  private readonly queue: FairQueue<Held>
  private pumping: Promise<void> | undefined
  private closed = false
  private wake: (() => void) | undefined

  constructor(private readonly hook: SlackWebhook, private readonly opts: SlackDeliveryOptions) {
    this.queue = new FairQueue(opts.coalesceAfter)
  }

  enqueue(notice: Notice): void {
    if (this.closed) return
    if (this.queue.size >= MAX_QUEUE && !this.makeRoom(notice)) return
    this.queue.add(notice.requester, { notice, attempts: 0 })
    this.pumping ??= this.pump().finally(() => { this.pumping = undefined })
  }

  /** A full queue gives up the newest notice of whoever has the most waiting — unless that is this notice's requester. */
  private makeRoom(notice: Notice): boolean {
    const largest = this.queue.largest()
    const victim = largest && largest.requester !== notice.requester ? this.queue.evictFromLargest()?.item.notice : notice
    if (victim) this.drop([victim], 'queue_full', 'Slack queue is full; the newest notice of the requester with the most waiting was dropped (the run is unaffected)')
    return victim !== notice
  }

  private async pump(): Promise<void> {
    while (this.queue.size > 0 && !this.closed) {
      const turn = this.queue.next() as Turn<Held>
      for (const h of turn.items) h.attempts++
      const outcome = await this.hook.post(this.messageFor(turn))
      const wait = this.settle(turn, outcome)
      if (wait !== undefined) await this.sleep(wait)
    }
  }

  private messageFor(turn: Turn<Held>): SlackMessage {
    const [only] = turn.items
    if (turn.items.length === 1 && only) return only.notice.message
    return summaryMessage(turn.requester, turn.items.map((h) => h.notice), this.opts.inboxUrl)
  }

  /** Records what became of a turn; returns how long to wait before the next post when it must be tried again. */
  private settle(turn: Turn<Held>, outcome: PostOutcome): number | undefined {
    const notices = turn.items.map((h) => h.notice)
    const fields = { runIds: notices.slice(0, 20).map((n) => n.runId), notices: notices.length, webhook: this.hook.host }
    if (outcome.kind === 'delivered') {
      if (notices.length > 1) this.opts.coalesced.inc(notices.length)
      this.opts.log.debug(fields, notices.length > 1 ? 'Slack summary delivered' : 'Slack message delivered')
      return undefined
    }
    if (outcome.kind === 'refused') {
      this.drop(notices, 'refused', 'Slack refused the message', { status: outcome.status, answer: outcome.answer })
      return undefined
    }
    const attempt = Math.max(...turn.items.map((h) => h.attempts))
    if (outcome.reason === 'rate_limited') this.opts.log.warn({ ...fields, retryAfterMs: outcome.retryAfterMs, attempt }, 'Slack rate limit; waiting as told')
    else if (outcome.reason === 'server_error') this.opts.log.warn({ ...fields, status: outcome.status, attempt }, 'Slack answered with a server error; retrying')
    else this.opts.log.warn({ ...fields, err: outcome.error, attempt }, 'cannot reach Slack; retrying')
    const spent = turn.items.filter((h) => h.attempts >= this.opts.maxAttempts)
    if (spent.length > 0) this.drop(spent.map((h) => h.notice), 'max_attempts', 'Slack message given up after its last attempt (the run is unaffected)', { attempts: attempt })
    const again = turn.items.filter((h) => h.attempts < this.opts.maxAttempts)
    if (again.length > 0) this.queue.putBack({ requester: turn.requester, items: again })
    const backoff = Math.min(MAX_BACKOFF_MS, this.opts.retryBaseMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4)
    return outcome.reason === 'rate_limited' ? outcome.retryAfterMs ?? backoff : backoff
  }

  private drop(notices: readonly Notice[], reason: string, message: string, extra: Record<string, unknown> = {}): void {
    this.opts.dropped.inc({ reason }, notices.length)
    this.opts.log.error({ runIds: notices.slice(0, 20).map((n) => n.runId), notices: notices.length, webhook: this.hook.host, reason, ...extra }, message)
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void { clearTimeout(timer); resolve() }
      this.wake = done
    })
  }

  /** Stops posting; waits up to `graceMs` for what is in flight. Notices still waiting are dropped (logged and counted). */
  async close(graceMs = 2000): Promise<void> {
    if (this.queue.size > 0 && this.pumping) {
      await Promise.race([this.pumping, new Promise((r) => setTimeout(r, graceMs).unref())])
    }
    this.closed = true
    this.wake?.()
    const left = this.queue.drain().map((h) => h.notice)
    if (left.length > 0) this.drop(left, 'shutdown', 'Slack messages still queued at shutdown were not sent')
  }
}
