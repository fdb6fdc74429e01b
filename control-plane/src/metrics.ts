/**
 * The control plane's Prometheus metrics (prom-client), one registry per
 * control plane so two in one process (tests, a dev stack) never mix series.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { UsageSnapshot } from './nats/index.js'

export interface MetricSources {
  nodesOnline: () => number
  nodesKnown: () => number
  auditAppends: () => number
  auditConflicts: () => number
  auditCheckpoints: () => number
  auditIndexed: () => number
  catalogActions: () => number
  resultsRecorded: () => number
  /** What /readyz answers: NATS connected and the catalog loaded. */
  ready: () => boolean
  /** Each runner's last heartbeat as this instance received it (Unix ms). */
  heartbeats: () => Array<{ id: string, name: string, at: number }>
  /** Unix ms when this instance last found the whole audit chain covered by a signed checkpoint. */
  auditCoveredAt: () => number
  jetstream: () => Promise<UsageSnapshot | undefined>
}

const gauge = (registry: Registry, name: string, help: string, read: () => number): Gauge =>
  new Gauge({ name, help, registers: [registry], collect() { this.set(read()) } })

/** Outcomes and reasons known up front start at 0, so the first one is an increase() an alert sees. */
const APPROVAL_OUTCOMES = ['approved', 'approval_recorded', 'denied', 'expired'] as const
const WAIT_OUTCOMES = ['approved', 'denied', 'expired'] as const
const SLACK_DROP_REASONS = ['refused', 'max_attempts', 'outbox_full', 'outbox_unavailable', 'malformed'] as const
const SLACK_FAILURE_REASONS = ['rate_limited', 'server_error', 'unreachable', 'refused'] as const

export class Metrics {
  readonly registry = new Registry()
  readonly runs = new Counter({ name: 'writ_runs_total', help: 'Runs created, by initial status', labelNames: ['status'], registers: [this.registry] })
  readonly dispatches = new Counter({ name: 'writ_dispatches_total', help: 'Writs dispatched, by runner answer', labelNames: ['outcome'], registers: [this.registry] })
  readonly rejected = new Counter({ name: 'writ_requests_rejected_total', help: 'Requests refused, by error code', labelNames: ['code'], registers: [this.registry] })
  readonly http = new Counter({ name: 'writ_http_requests_total', help: 'HTTP requests, by route and status code', labelNames: ['route', 'status'], registers: [this.registry] })
  readonly decisions = new Counter({ name: 'writ_approval_decisions_total', help: 'Approval decisions, by outcome (approved, approval_recorded, denied, expired)', labelNames: ['outcome'], registers: [this.registry] })
  readonly approvalWait = new Histogram({
    name: 'writ_approval_wait_seconds', help: 'From a run entering pending_approval to its decision (approved, denied or expired)', labelNames: ['outcome'],
    buckets: [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600], registers: [this.registry],
  })
  readonly slackDropped = new Counter({
    name: 'writ_slack_notices_dropped_total', labelNames: ['reason'], registers: [this.registry],
    help: 'Slack notices never posted, by reason (refused: Slack answered 4xx; max_attempts: still failing after notify.slack.max_attempts; outbox_full, outbox_unavailable, malformed)',
  })
  readonly slackCoalesced = new Counter({ name: 'writ_slack_notices_coalesced_total', help: 'Slack notices posted inside a per-requester summary rather than one message each', registers: [this.registry] })
  readonly auditEventsRead = new Counter({ name: 'writ_audit_query_events_read_total', help: 'Stored audit events read to answer GET /v1/audit (indexed lookups and scans)', registers: [this.registry] })
  readonly slackFailures = new Counter({
    name: 'writ_slack_post_failures_total', labelNames: ['reason'], registers: [this.registry],
    help: 'Posts to the Slack webhook that failed, by reason (rate_limited, server_error, unreachable: retried; refused: a 4xx, given up)',
  })
  readonly runDuration = new Histogram({
    name: 'writ_run_duration_seconds', help: 'Runs from dispatch to result, by action and final status', labelNames: ['action', 'status'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [this.registry],
  })

  constructor(sources: MetricSources) {
    gauge(this.registry, 'writ_nodes_online', 'Nodes with a recent heartbeat', sources.nodesOnline)
    gauge(this.registry, 'writ_nodes_known', 'Nodes ever seen since start', sources.nodesKnown)
    gauge(this.registry, 'writ_audit_appends', 'Audit events appended by this instance', sources.auditAppends)
    gauge(this.registry, 'writ_audit_append_conflicts', 'Audit appends retried after another instance appended first', sources.auditConflicts)
    gauge(this.registry, 'writ_audit_checkpoints', 'Signed audit checkpoints appended by this instance', sources.auditCheckpoints)
    gauge(this.registry, 'writ_catalog_actions', 'Actions in the loaded catalog', sources.catalogActions)
    gauge(this.registry, 'writ_audit_index_seq', 'Audit stream sequence this instance has indexed through (0 until the first audit read)', sources.auditIndexed)
    gauge(this.registry, 'writ_results_recorded', 'Runner results recorded by this instance', sources.resultsRecorded)
    gauge(this.registry, 'writ_control_plane_ready', '1 while this instance is ready (as /readyz): NATS connected, catalog loaded', () => (sources.ready() ? 1 : 0))
    gauge(this.registry, 'writ_audit_covered_timestamp_seconds',
      'Unix time this instance last found every audit event (any instance\'s) covered by a signed checkpoint; its start time until the first look',
      () => sources.auditCoveredAt() / 1000)
    new Gauge({
      name: 'writ_node_last_heartbeat_timestamp_seconds', help: 'Unix time of the last heartbeat this instance received from the node\'s runner',
      labelNames: ['node', 'node_name'], registers: [this.registry],
      collect() {
        this.reset()
        for (const n of sources.heartbeats()) this.set({ node: n.id, node_name: n.name }, n.at / 1000)
      },
    })
    this.jetstreamGauges(sources.jetstream)
    for (const outcome of APPROVAL_OUTCOMES) this.decisions.inc({ outcome }, 0)
    for (const outcome of WAIT_OUTCOMES) this.approvalWait.zero({ outcome })
    for (const reason of SLACK_DROP_REASONS) this.slackDropped.inc({ reason }, 0)
    for (const reason of SLACK_FAILURE_REASONS) this.slackFailures.inc({ reason }, 0)
  }

  /** Usage against limits of writ's streams and its account, from one cached look per scrape interval. */
  private jetstreamGauges(read: () => Promise<UsageSnapshot | undefined>): void {
    const streamGauge = (name: string, help: string, value: (s: UsageSnapshot['streams'][number]) => number): Gauge => new Gauge({
      name, help, labelNames: ['stream'], registers: [this.registry],
      async collect() {
        const snap = await read()
        this.reset()
        for (const s of snap?.streams ?? []) this.set({ stream: s.stream }, value(s))
      },
    })
    streamGauge('writ_jetstream_stream_bytes', 'Bytes stored in the stream (WRIT_AUDIT, KV_WRIT_RUNS, WRIT_RESULTS, WRIT_EVENTS)', (s) => s.bytes)
    streamGauge('writ_jetstream_stream_messages', 'Messages stored in the stream', (s) => s.messages)
    streamGauge('writ_jetstream_stream_max_bytes', 'The stream\'s max_bytes limit; -1 for none', (s) => s.maxBytes)
    streamGauge('writ_jetstream_stream_max_messages', 'The stream\'s max_msgs limit; -1 for none', (s) => s.maxMessages)
    const accountGauge = (name: string, help: string, value: (a: UsageSnapshot['account'][number]) => number): Gauge => new Gauge({
      name, help, labelNames: ['tier'], registers: [this.registry],
      async collect() {
        const snap = await read()
        this.reset()
        for (const a of snap?.account ?? []) this.set({ tier: a.tier }, value(a))
      },
    })
    accountGauge('writ_jetstream_account_storage_bytes', 'File storage the JetStream account uses (tier all, or per replica count)', (a) => a.bytes)
    accountGauge('writ_jetstream_account_max_storage_bytes', 'File storage the JetStream account may use; -1 or 0 for no limit', (a) => a.maxBytes)
  }

  render(): Promise<string> { return this.registry.metrics() }

  get contentType(): string { return this.registry.contentType }
}
