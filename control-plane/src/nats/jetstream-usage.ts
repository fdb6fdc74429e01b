/**
 * How full writ's streams and its JetStream account are, for /metrics. One
 * look (a stream info per stream, one account info) serves every scrape for
 * `maxAgeMs`, so Prometheus scraping every few seconds from several places
 * costs JetStream a handful of requests a quarter minute. A look that fails
 * or is slow leaves the last good answer in place (and is logged once).
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager, type JetStreamManager, type JetStreamUsageAccountLimits } from '@nats-io/jetstream'
import type { Logger } from 'pino'

/** A stream's size and its own limits (-1: none, as JetStream reports it). */
export interface StreamUsage { stream: string, bytes: number, messages: number, maxBytes: number, maxMessages: number }
/** File storage the account uses and may use (-1 or 0: no limit); `tier` is `all`, or `R1`/`R3` with per-replica limits. */
export interface AccountStorage { tier: string, bytes: number, maxBytes: number }
export interface UsageSnapshot { streams: StreamUsage[], account: AccountStorage[] }

export interface JetStreamUsageOptions {
  /** How long one look serves scrapes. */
  maxAgeMs: number
  /** How long a scrape waits for a new look before it gets the last one. */
  timeoutMs: number
}

const STREAM_NOT_FOUND = 10059

export class JetStreamUsage {
  private last: { at: number, snapshot: UsageSnapshot } | undefined
  private looking: Promise<void> | undefined
  private jsm: JetStreamManager | undefined
  private failing = false

  constructor(
    private readonly nc: NatsConnection,
    private readonly streamNames: readonly string[],
    private readonly log: Logger,
    private readonly opts: JetStreamUsageOptions = { maxAgeMs: 15_000, timeoutMs: 2_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** The newest look no older than `maxAgeMs`, else a new one (or the last, if it does not come in time). */
  async snapshot(): Promise<UsageSnapshot | undefined> {
    if (this.last && this.now() - this.last.at < this.opts.maxAgeMs) return this.last.snapshot
    this.looking ??= this.look().finally(() => { this.looking = undefined })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.opts.timeoutMs) })
    await Promise.race([this.looking, late])
    clearTimeout(timer)
    return this.last?.snapshot
  }

  private async look(): Promise<void> {
    try {
      this.jsm ??= await jetstreamManager(this.nc)
      const jsm = this.jsm
      const streams: StreamUsage[] = []
      for (const stream of this.streamNames) {
        const info = await jsm.streams.info(stream).catch((err: unknown) => {
          // A stream this deployment does not have yet is not an error here.
          if ((err as { code?: number }).code === STREAM_NOT_FOUND) return undefined
          throw err
        })
        if (!info) continue
        streams.push({ stream, bytes: info.state.bytes, messages: info.state.messages, maxBytes: info.config.max_bytes, maxMessages: info.config.max_msgs })
      }
      const account = accountStorage(await jsm.getAccountInfo())
      this.last = { at: this.now(), snapshot: { streams, account } }
      if (this.failing) this.log.info('JetStream usage readable again')
      this.failing = false
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'cannot read JetStream usage; /metrics keeps the last values')
      this.failing = true
    }
  }
}

function accountStorage(info: JetStreamUsageAccountLimits & { tiers?: Partial<Record<string, JetStreamUsageAccountLimits>> }): AccountStorage[] {
  const out: AccountStorage[] = [{ tier: 'all', bytes: info.storage, maxBytes: info.limits.max_storage }]
  // Limits per replica count (nsc --js-tier) are reported per tier; the account-wide limit is then unset.
  for (const [tier, t] of Object.entries(info.tiers ?? {})) {
    if (t) out.push({ tier, bytes: t.storage, maxBytes: t.limits.max_storage })
  }
  return out
}
