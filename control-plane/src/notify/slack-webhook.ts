/**
 * Posts messages to one Slack incoming webhook, in order, off the request
 * path: a run never waits on Slack. A failed post is retried with exponential
 * backoff; a 429 waits as long as its `Retry-After` says (Slack allows about
 * one message a second per webhook). The webhook URL is a secret: it is never
 * logged, only its host.
 */
import { request } from 'undici'
import type { Logger } from 'pino'
import type { SlackMessage } from './slack-message.js'

export interface SlackWebhookOptions {
  maxAttempts: number
  timeoutMs: number
  /** First backoff after a failure; doubles per attempt, capped at a minute. */
  retryBaseMs: number
  log: Logger
  /** A message that will never be posted (writ_slack_notices_dropped_total). */
  onDropped?: (reason: 'refused' | 'max_attempts' | 'queue_full' | 'shutdown', count: number) => void
  /** A post that failed, retried or not (writ_slack_post_failures_total). */
  onPostFailed?: (reason: 'rate_limited' | 'server_error' | 'unreachable' | 'refused') => void
}

interface Queued { message: SlackMessage, runId: string, attempt: number }

const MAX_QUEUE = 1000
const MAX_BACKOFF_MS = 60_000

export class SlackWebhook {
  private readonly queue: Queued[] = []
  private pumping: Promise<void> | undefined
  private closed = false
  private wake: (() => void) | undefined
  delivered = 0
  failed = 0

  constructor(private readonly url: string, private readonly opts: SlackWebhookOptions) {}

  /** Where messages go, safe to log. */
  get host(): string { return new URL(this.url).host }

  post(message: SlackMessage, runId: string): void {
    if (this.closed) return
    if (this.queue.length >= MAX_QUEUE) {
      this.failed++
      this.opts.onDropped?.('queue_full', 1)
      this.opts.log.error({ runId, webhook: this.host }, 'Slack queue is full; message dropped (the run is unaffected)')
      return
    }
    this.queue.push({ message, runId, attempt: 0 })
    this.pumping ??= this.pump().finally(() => { this.pumping = undefined })
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const item = this.queue[0] as Queued
      item.attempt++
      const wait = await this.send(item)
      if (wait === undefined) { this.queue.shift(); continue }
      if (item.attempt >= this.opts.maxAttempts) {
        this.queue.shift()
        this.failed++
        this.opts.onDropped?.('max_attempts', 1)
        this.opts.log.error({ runId: item.runId, webhook: this.host, attempts: item.attempt }, 'Slack message given up after its last attempt (the run is unaffected)')
        continue
      }
      await this.sleep(wait)
    }
  }

  /** Undefined when the message is done with (delivered, or refused for good); else how long to wait before the next attempt. */
  private async send(item: Queued): Promise<number | undefined> {
    const backoff = Math.min(MAX_BACKOFF_MS, this.opts.retryBaseMs * 2 ** (item.attempt - 1)) * (0.8 + Math.random() * 0.4)
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(item.message),
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      })
      const body = (await res.body.text()).slice(0, 200)
      if (res.statusCode >= 200 && res.statusCode < 300) {
        this.delivered++
        this.opts.log.debug({ runId: item.runId, webhook: this.host }, 'Slack message delivered')
        return undefined
      }
      if (res.statusCode === 429) {
        this.opts.onPostFailed?.('rate_limited')
        const after = Number(res.headers['retry-after'])
        const waitMs = Number.isFinite(after) && after >= 0 ? Math.min(after * 1000, 10 * MAX_BACKOFF_MS) : backoff
        this.opts.log.warn({ runId: item.runId, webhook: this.host, retryAfterMs: waitMs, attempt: item.attempt }, 'Slack rate limit; waiting as told')
        return waitMs
      }
      if (res.statusCode >= 500) {
        this.opts.onPostFailed?.('server_error')
        this.opts.log.warn({ runId: item.runId, webhook: this.host, status: res.statusCode, attempt: item.attempt }, 'Slack answered with a server error; retrying')
        return backoff
      }
      // 4xx: the message or the webhook is wrong; retrying will not help.
      this.failed++
      this.opts.onPostFailed?.('refused')
      this.opts.onDropped?.('refused', 1)
      this.opts.log.error({ runId: item.runId, webhook: this.host, status: res.statusCode, answer: body }, 'Slack refused the message')
      return undefined
    } catch (err) {
      this.opts.onPostFailed?.('unreachable')
      this.opts.log.warn({ runId: item.runId, webhook: this.host, err: (err as Error).message, attempt: item.attempt }, 'cannot reach Slack; retrying')
      return backoff
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void { clearTimeout(timer); resolve() }
      this.wake = done
    })
  }

  /** Stops posting; waits up to `graceMs` for what is in flight. Queued messages still waiting are dropped (and logged). */
  async close(graceMs = 2000): Promise<void> {
    if (this.queue.length > 0 && this.pumping) {
      await Promise.race([this.pumping, new Promise((r) => setTimeout(r, graceMs).unref())])
    }
    this.closed = true
    this.wake?.()
    if (this.queue.length > 0) {
      this.opts.onDropped?.('shutdown', this.queue.length)
      this.opts.log.warn({ webhook: this.host, dropped: this.queue.length }, 'Slack messages still queued at shutdown were not sent')
    }
  }
}
