/**
 * Tells people that a run waits for them, and what became of it. With a Slack
 * webhook configured the notices go through the outbox on JetStream
 * (slack-outbox.ts), from which every instance delivers (slack-delivery.ts);
 * without one (as in `writ dev`) they are logged, and printed when the
 * caller gives a printer.
 */
import { readFileSync } from 'node:fs'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Counter } from 'prom-client'
import type { Logger } from 'pino'
import type { PackCatalog } from '@writ/packs'
import { redactArgs, runSideEffects, runSummary, sensitiveArgNames, type Run } from '../runs/index.js'
import { messageLines, outcomeMessage, pendingMessage, type ActionFacts, type SlackMessage } from './slack-message.js'
import { SlackDelivery } from './slack-delivery.js'
import { SlackOutbox } from './slack-outbox.js'
import { SlackWebhook } from './slack-webhook.js'

export interface ApprovalNotifier {
  /** `run` entered pending_approval; `url` is its portal page. */
  pending(run: Run, url: string): void
  /** `run` was approved (and dispatched), denied or expired. */
  decided(run: Run, url: string): void
  /** A notice about the control plane itself (a freeze set or lifted): `id` dedupes it, `text` is plain text. */
  broadcast(notice: { id: string, kind: string, text: string }): void
  close(): Promise<void>
}

export interface NotifierConfig {
  webhook_url?: string | undefined
  webhook_url_file?: string | undefined
  /** Deliveries of one notice before it is given up. */
  max_attempts: number
  timeoutMs: number
  retryBaseMs: number
  /** More notices than this waiting from one requester go out as one summary. */
  coalesceAfter: number
  /** How long a notice an instance holds stays its own without a sign of life. */
  ackWaitMs: number
}

/** What the notifier uses, reports to and links to, from the control plane. */
export interface NotifierDeps {
  nc: NatsConnection
  log: Logger
  /** The portal inbox (what a summary links to). */
  inboxUrl: string
  /** writ_slack_notices_dropped_total{reason}, writ_slack_post_failures_total{reason} and writ_slack_notices_coalesced_total. */
  dropped: Counter<'reason'>
  failures: Counter<'reason'>
  coalesced: Counter
  /** Where messages are printed when no webhook is configured (the dev stack's terminal). */
  print?: ((line: string) => void) | undefined
}

/** Where delivery trouble is counted: writ_slack_notices_dropped_total and writ_slack_post_failures_total, by reason. */
export interface NotifierMetrics { dropped: Counter<'reason'>, failures: Counter<'reason'> }

export class NotifyConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'NotifyConfigError' }
}

function factsOf(catalog: PackCatalog, run: Run): ActionFacts {
  const hit = catalog.lookup(run.action)
  // A sensitive argument reaches the runner in the writ and nowhere a person reads back.
  const args = redactArgs(run.args, sensitiveArgNames(catalog, run.action))
  // The effects that apply to these arguments, and the change in one line (escaped as plain_text like every agent-chosen value).
  return { title: hit.ok ? hit.action.spec.title : run.action, summary: runSummary(run, catalog), side_effects: runSideEffects(run, catalog), args }
}

function webhookUrl(cfg: NotifierConfig): string | undefined {
  if (!cfg.webhook_url_file) return cfg.webhook_url
  let url: string
  try { url = readFileSync(cfg.webhook_url_file, 'utf8').trim() } catch (err) {
    throw new NotifyConfigError(`cannot read the Slack webhook URL (setting notify.slack.webhook_url_file): ${cfg.webhook_url_file}`, { cause: err })
  }
  if (!/^https?:\/\/\S+$/.test(url)) throw new NotifyConfigError(`notify.slack.webhook_url_file ${cfg.webhook_url_file} does not hold an http(s) URL`)
  return url
}

/** Starts delivering the outbox when a webhook is configured (the outbox stream already exists: ensureStreams). */
export async function createApprovalNotifier(cfg: NotifierConfig, catalog: PackCatalog, deps: NotifierDeps): Promise<ApprovalNotifier> {
  const { log, print } = deps
  const url = webhookUrl(cfg)
  let outbox: SlackOutbox | undefined
  let delivery: SlackDelivery | undefined
  if (url) {
    const hook = new SlackWebhook(url, cfg.timeoutMs)
    outbox = new SlackOutbox(deps.nc, log, deps.dropped)
    delivery = new SlackDelivery(deps.nc, hook, {
      maxAttempts: cfg.max_attempts, retryBaseMs: cfg.retryBaseMs, ackWaitMs: cfg.ackWaitMs, coalesceAfter: cfg.coalesceAfter,
      inboxUrl: deps.inboxUrl, log, dropped: deps.dropped, failures: deps.failures, coalesced: deps.coalesced,
    })
    await delivery.start()
    log.info({ webhook: hook.host }, 'approval messages go to a Slack webhook')
  }
  const deliver = (kind: string, run: Run, message: SlackMessage): void => {
    if (outbox) {
      outbox.enqueue({ v: 1, id: `${run.id}:${kind}:${run.status}`, kind, requester: run.requester.id, run_id: run.id, action: run.action, message })
      return
    }
    log.info({ runId: run.id, slack: message }, `no Slack webhook configured; message: ${message.text}`)
    if (print) for (const line of messageLines(message)) print(line)
  }
  return {
    pending: (run, link) => deliver('pending', run, pendingMessage(run, factsOf(catalog, run), link)),
    decided: (run, link) => deliver('decided', run, outcomeMessage(run, link)),
    broadcast: (notice) => {
      // Plain text, not mrkdwn: an operator's reason is shown as written, never as markup or a link.
      const message: SlackMessage = {
        text: notice.text, blocks: [{ type: 'section', text: { type: 'plain_text', text: notice.text.slice(0, 2900), emoji: true } }], unfurl_links: false, unfurl_media: false,
      }
      if (outbox) {
        outbox.enqueue({ v: 1, id: notice.id, kind: notice.kind, requester: 'control-plane', run_id: notice.kind, action: notice.kind, message })
        return
      }
      log.info({ notice: notice.kind }, `no Slack webhook configured; message: ${notice.text}`)
      if (print) print(notice.text)
    },
    close: async () => {
      await outbox?.close()
      await delivery?.close()
    },
  }
}
