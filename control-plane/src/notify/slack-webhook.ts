/**
 * One Slack incoming webhook: posts one message and says what came of it —
 * accepted, worth another try (a 5xx, no answer, or a 429 with how long its
 * `Retry-After` asks to wait), or refused for good (any other 4xx). The
 * webhook URL is a secret: it is never logged, only its host.
 */
import { request } from 'undici'
import type { SlackMessage } from './slack-message.js'

export type PostOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry', reason: 'server_error', status: number }
  | { kind: 'retry', reason: 'rate_limited', retryAfterMs: number | undefined }
  | { kind: 'retry', reason: 'unreachable', error: string }
  | { kind: 'refused', status: number, answer: string }

/** The longest a `Retry-After` is taken at its word. */
const MAX_RETRY_AFTER_MS = 600_000

export class SlackWebhook {
  constructor(private readonly url: string, private readonly timeoutMs: number) {}

  /** Where messages go, safe to log. */
  get host(): string { return new URL(this.url).host }

  async post(message: SlackMessage): Promise<PostOutcome> {
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      })
      const answer = (await res.body.text()).slice(0, 200)
      if (res.statusCode >= 200 && res.statusCode < 300) return { kind: 'delivered' }
      if (res.statusCode === 429) {
        const after = Number(res.headers['retry-after'])
        return { kind: 'retry', reason: 'rate_limited', retryAfterMs: Number.isFinite(after) && after >= 0 ? Math.min(after * 1000, MAX_RETRY_AFTER_MS) : undefined }
      }
      if (res.statusCode >= 500) return { kind: 'retry', reason: 'server_error', status: res.statusCode }
      // 4xx: the message or the webhook is wrong; retrying will not help.
      return { kind: 'refused', status: res.statusCode, answer }
    } catch (err) {
      return { kind: 'retry', reason: 'unreachable', error: (err as Error).message }
    }
  }
}
