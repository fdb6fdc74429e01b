/**
 * Tells people that a run waits for them, and what became of it. With a Slack
 * webhook configured the messages go there; without one (as in `writ dev`)
 * they are logged, and printed when the caller gives a printer.
 */
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { Counter } from 'prom-client'
import type { PackCatalog } from '@writ/packs'
import type { Run } from '../runs/index.js'
import { outcomeMessage, pendingMessage, type ActionFacts, type SlackMessage } from './slack-message.js'
import { SlackWebhook } from './slack-webhook.js'

export interface ApprovalNotifier {
  /** `run` entered pending_approval; `url` is its portal page. */
  pending(run: Run, url: string): void
  /** `run` was approved (and dispatched), denied or expired. */
  decided(run: Run, url: string): void
  close(): Promise<void>
}

export interface NotifierConfig {
  webhook_url?: string | undefined
  webhook_url_file?: string | undefined
  max_attempts: number
  timeoutMs: number
  retryBaseMs: number
}

/** Where delivery trouble is counted: writ_slack_notices_dropped_total and writ_slack_post_failures_total, by reason. */
export interface NotifierMetrics { dropped: Counter<'reason'>, failures: Counter<'reason'> }

export class NotifyConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'NotifyConfigError' }
}

function factsOf(catalog: PackCatalog, run: Run): ActionFacts {
  const hit = catalog.lookup(run.action)
  return hit.ok ? { title: hit.action.spec.title, side_effects: hit.action.spec.side_effects ?? [] } : { title: run.action, side_effects: [] }
}

export function createApprovalNotifier(cfg: NotifierConfig, catalog: PackCatalog, log: Logger, print?: (line: string) => void, metrics?: NotifierMetrics): ApprovalNotifier {
  let url = cfg.webhook_url
  if (cfg.webhook_url_file) {
    try { url = readFileSync(cfg.webhook_url_file, 'utf8').trim() } catch (err) {
      throw new NotifyConfigError(`cannot read the Slack webhook URL (setting notify.slack.webhook_url_file): ${cfg.webhook_url_file}`, { cause: err })
    }
    if (!/^https?:\/\/\S+$/.test(url)) throw new NotifyConfigError(`notify.slack.webhook_url_file ${cfg.webhook_url_file} does not hold an http(s) URL`)
  }
  const deliver = (message: SlackMessage, runId: string): void => { hook ? hook.post(message, runId) : show(message, runId) }
  const hook = url
    ? new SlackWebhook(url, {
      maxAttempts: cfg.max_attempts, timeoutMs: cfg.timeoutMs, retryBaseMs: cfg.retryBaseMs, log,
      onDropped: (reason, count) => metrics?.dropped.inc({ reason }, count),
      onPostFailed: (reason) => metrics?.failures.inc({ reason }),
    })
    : undefined
  const show = (message: SlackMessage, runId: string): void => {
    log.info({ runId, slack: message }, `no Slack webhook configured; message: ${message.text}`)
    print?.(message.text)
  }
  if (hook) log.info({ webhook: hook.host }, 'approval messages go to a Slack webhook')
  return {
    pending: (run, link) => deliver(pendingMessage(run, factsOf(catalog, run), link), run.id),
    decided: (run, link) => deliver(outcomeMessage(run, link), run.id),
    close: async () => { await hook?.close() },
  }
}
