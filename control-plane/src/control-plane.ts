/**
 * The control plane's moving parts, wired once: catalog, fleet view, run
 * store, audit chain, dispatcher, results consumer, deadline sweeper,
 * approvals, grants, brakes, break-glass, plans (what comes before them —
 * NATS, streams, keys, passkeys — is control-plane-setup.ts). `buildApp` puts
 * HTTP in front of this; a dev stack can start it directly.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { PackCatalog } from '@writ/packs'
import { streams } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { ApprovalService, ImpactPreview, previewSteps } from './approvals/index.js'
import { BreakGlass, ReviewStore } from './break-glass/index.js'
import { AuditChain, AuditCheckpointer, AuditReader, type AuditEvent } from './audit/index.js'
import { BrakeMetrics, Brakes, BudgetLedger, FreezeStore, openBrakesBucket } from './brakes/index.js'
import { PrincipalRegistry } from './auth/index.js'
import { durationMs, publicUrl, type Config } from './config.js'
import { FleetView, NodeAttributeSource, NomadNodesClient } from './fleet/index.js'
import { Metrics } from './metrics.js'
import { AUDIT_STREAM, JetStreamUsage } from './nats/index.js'
import type { Passkeys } from './passkeys/index.js'
import { connectNats, ControlPlaneStartError, ensureJetStream, loadKey, preparePasskeys } from './control-plane-setup.js'
import { createApprovalNotifier, type ApprovalNotifier } from './notify/index.js'
import { Policy, PolicyScope, policyNodeOf } from './policy/index.js'
import { Plans, planAsRun } from './plans/index.js'
import { GrantService, GrantStore } from './grants/index.js'
import { DeadlineSweeper, Dispatcher, Operations, OutputBuffer, ResultsConsumer, RUNS_BUCKET, RunAdmission, RunService, RunStore, gatedByRegistry } from './runs/index.js'

export { connectNats, ControlPlaneStartError, ensureJetStream } from './control-plane-setup.js'

export interface ControlPlane {
  config: Config
  instanceId: string
  log: Logger
  nc: NatsConnection
  catalog: PackCatalog
  principals: PrincipalRegistry
  policy: Policy
  /** What each principal could ever run: outside it, an action or node reads as nonexistent (MCP, and REST for agents). */
  scope: PolicyScope
  fleet: FleetView
  store: RunStore
  audit: AuditChain
  /** Pages of `GET /v1/audit`, bounded, through an index by run and principal. */
  auditReader: AuditReader
  dispatcher: Dispatcher
  outputs: OutputBuffer
  metrics: Metrics
  runs: RunService
  approvals: ApprovalService
  /** Break-glass runs and their review items (break-glass/). */
  breakGlass: BreakGlass
  /** Passkey registration and passkey-signed approvals (config `passkeys`). */
  passkeys: Passkeys | undefined
  notifier: ApprovalNotifier
  /** Standing grants: approvals given in advance (grants/). */
  grants: GrantService
  /** Plans: one request over many nodes (plans/). */
  plans: Plans
  /** Idempotency keys of run and plan requests (runs/operations.ts). */
  operations: Operations
  /** The freeze and the per-principal budgets (brakes/). */
  brakes: Brakes
  /** The portal page of a plan. */
  planUrl(planId: string): string
  /** The portal page of a run. */
  runUrl(runId: string): string
  /** The durable consumer recording runner results (stop and start it to hold results back). */
  results: ResultsConsumer
  /** Follows every audit event stored from when it resolves (by any instance); resolves with the unsubscribe. */
  onAudit(listener: (e: AuditEvent) => void): Promise<() => void>
  /** Whether the NATS connection is up (false while reconnecting). */
  natsConnected(): boolean
  /** What /readyz and writ_control_plane_ready report: NATS connected (not draining) and a catalog loaded. */
  readiness(): { nats: boolean, catalog: boolean }
  /** Drains in-flight work and the NATS connection. */
  close(): Promise<void>
}

export interface StartOptions {
  /** Where approval messages are printed when no Slack webhook is configured (the dev stack's terminal). */
  print?: (line: string) => void
}

export async function startControlPlane(config: Config, log: Logger, opts: StartOptions = {}): Promise<ControlPlane> {
  const key = loadKey(config.signing.key_file)
  const auditKey = config.audit.key_file ? loadKey(config.audit.key_file, 'audit.key_file') : key
  const catalog = PackCatalog.fromDirs(config.packs.dirs)
  if (catalog.packs.length === 0) {
    const why = catalog.load.errors.slice(0, 3).map((e) => `${e.file}${e.field ? ` (${e.field})` : ''}: ${e.message}`).join('; ')
    throw new ControlPlaneStartError(`no pack loaded from packs.dirs ${config.packs.dirs.join(', ')}${why ? `: ${why}` : ''}`)
  }
  for (const e of catalog.load.errors) log.warn({ file: e.file, field: e.field, pack: e.pack, action: e.action }, `pack load error: ${e.message}`)
  const instanceId = config.instance_id ?? `${hostname()}-${randomBytes(3).toString('hex')}`
  const clog = log.child({ instance: instanceId })
  const openPasskeys = preparePasskeys(config, key, catalog, clog)

  const nc = await connectNats(config)
  let passkeys: Passkeys | undefined
  try {
    await ensureJetStream(nc, config)
    passkeys = await openPasskeys?.(nc)
    const store = await RunStore.open(nc, config.jetstream.replicas, clog)
    await store.startWatch()
    let connected = true
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') { connected = false; clog.warn({ server: s.server }, 'NATS disconnected') }
        if (s.type === 'reconnect') { connected = true; clog.info({ server: s.server }, 'NATS reconnected') }
      }
    })().catch(() => {})
    const audit = await AuditChain.open(nc, instanceId, clog)
    const attributes = new NodeAttributeSource(
      config.nomad.addr ? new NomadNodesClient({
        addr: config.nomad.addr, token: config.nomad.token, caCertFile: config.nomad.ca_cert, clientCertFile: config.nomad.client_cert,
        clientKeyFile: config.nomad.client_key, tlsServerName: config.nomad.tls_server_name, timeoutMs: durationMs(config.nomad.timeout),
      }) : undefined,
      { refreshMs: durationMs(config.nomad.refresh_interval), maxStaleMs: durationMs(config.nomad.max_stale) }, clog,
    )
    attributes.start()
    const fleet = new FleetView(config.fleet.offline_after_missed, clog, Date.now, attributes)
    fleet.start(nc)
    const outputs = new OutputBuffer()
    outputs.start(nc)
    let results: ResultsConsumer | undefined
    let auditReader: AuditReader | undefined
    const readiness = (): { nats: boolean, catalog: boolean } => ({ nats: connected && !nc.isClosed() && !nc.isDraining(), catalog: catalog.size > 0 })
    const usage = new JetStreamUsage(nc, [AUDIT_STREAM, `KV_${RUNS_BUCKET}`, streams.results.name, streams.events.name], clog, {
      maxAgeMs: durationMs(config.jetstream.usage_interval), timeoutMs: 2000,
    })
    const metrics = new Metrics({
      nodesOnline: () => fleet.onlineCount, nodesKnown: () => fleet.size, auditAppends: () => audit.appended,
      auditConflicts: () => audit.conflicts, auditCheckpoints: () => checkpoints.written, catalogActions: () => catalog.size, resultsRecorded: () => results?.recorded ?? 0,
      auditIndexed: () => auditReader?.indexedThrough ?? 0,
      ready: () => Object.values(readiness()).every(Boolean), heartbeats: () => fleet.heartbeats(), auditCoveredAt: () => checkpoints.coveredAt,
      jetstream: () => usage.snapshot(),
    })
    auditReader = await AuditReader.open(nc, audit, store, { maxScan: config.audit.max_scan, eventsRead: metrics.auditEventsRead, log: clog })
    const dispatcher = new Dispatcher(nc, key, { writTtlMs: durationMs(config.runs.writ_ttl), ackTimeoutMs: durationMs(config.runs.ack_timeout) })
    results = new ResultsConsumer(nc, store, audit, clog, (run) => {
      if (run.dispatched_at && run.result) metrics.runDuration.observe({ action: run.action, status: run.status }, run.result.duration_ms / 1000)
    })
    const sweeper = new DeadlineSweeper(store, audit, durationMs(config.runs.sweep_interval), clog, (r) => results.storedAt(r.node_id, r.id))
    sweeper.start()
    const checkpoints = new AuditCheckpointer(audit, auditKey, durationMs(config.audit.checkpoint_interval), clog)
    checkpoints.start()
    const principals = new PrincipalRegistry(config.principals)
    const policy = new Policy(config.policy.rules)
    const scope = new PolicyScope(policy, function* () {
      for (const { action } of catalog.allActions()) yield { id: action.id, risk: action.spec.risk }
    })
    const base = publicUrl(config)
    const runUrl = (runId: string): string => `${base}/ui/runs/${encodeURIComponent(runId)}`
    const s = config.notify.slack
    const notifier = await createApprovalNotifier(
      {
        webhook_url: s.webhook_url, webhook_url_file: s.webhook_url_file, max_attempts: s.max_attempts, timeoutMs: durationMs(s.timeout), retryBaseMs: durationMs(s.retry_base),
        coalesceAfter: s.coalesce_after, ackWaitMs: durationMs(s.ack_wait),
      },
      catalog, { nc, log: clog, inboxUrl: `${base}/ui/`, dropped: metrics.slackDropped, failures: metrics.slackFailures, coalesced: metrics.slackCoalesced, print: opts.print },
    )
    const grants = new GrantService({
      store: await GrantStore.open(nc, config.jetstream.replicas, clog), audit, catalog, fleet, policy, principals, key,
      maxLifetimeMs: durationMs(config.grants.max_lifetime), passkeys, grantsUrl: `${base}/ui/grants`, log: clog,
    })
    const brakesBucket = await openBrakesBucket(nc, config.jetstream.replicas)
    const freezes = await FreezeStore.open(brakesBucket, clog)
    const budgets = new Map(config.principals.flatMap((p) => (p.budgets ? [[p.id, p.budgets] as const] : [])))
    const brakes = new Brakes({
      freezes, ledger: new BudgetLedger(brakesBucket), catalog, principals, budgets, audit, log: clog,
      metrics: new BrakeMetrics(metrics.registry, [...budgets.keys()], () => freezes.freezes.length),
      notify: (notice) => notifier.broadcast(notice),
    })
    let approvals: ApprovalService | undefined
    let previews: ImpactPreview | undefined
    const runs = new RunService({
      catalog, fleet, policy, scope, store, audit, dispatcher, metrics, log: clog, instanceId, lostGraceMs: durationMs(config.runs.lost_grace), runUrl,
      // The preview's state read is bound into the approval before anyone is told of the run (impact-preview.ts, a bounded wait).
      onPendingApproval: async (run) => {
        await previews?.start(run).catch((err: unknown) => clog.warn({ err, runId: run.id }, 'impact preview failed'))
        approvals?.announce((await store.get(run.id).catch(() => undefined))?.run ?? run)
      },
      passkeyRequirement: (action, risk) => passkeys?.requirement(action, risk),
      admission: new RunAdmission(store, { maxActive: config.runs.max_active_runs, maxPendingPerRequester: config.runs.max_pending_per_requester }),
      cancelAnyGroups: config.runs.cancel_any_groups,
      onCanceledWhilePending: (run) => notifier.decided(run, runUrl(run.id)),
      grantCover: (req) => grants.cover(req),
      brakes,
    })
    approvals = new ApprovalService({ store, audit, runs, metrics, notifier, log: clog, runUrl, passkeys })
    const breakGlass = new BreakGlass({ store, runs, approvals, reviews: await ReviewStore.open(nc, config.jetstream.replicas), audit, notifier, passkeys, runUrl, log: clog })
    const planUrl = (id: string): string => `${base}/ui/plans/${encodeURIComponent(id)}`
    const consumer = results
    const plans = await Plans.open({
      nc, key, catalog, fleet, policy, scope, runStore: store, audit, passkeys, log: clog, instanceId, replicas: config.jetstream.replicas,
      maxTargets: config.plans.max_targets, sweepMs: durationMs(config.runs.sweep_interval), planUrl,
      rollout: { leaseMs: durationMs(config.plans.lease), writTtlMs: durationMs(config.runs.writ_ttl), ackTimeoutMs: durationMs(config.runs.ack_timeout), lostGraceMs: durationMs(config.runs.lost_grace) },
      decide: (principal, action, node) => gatedByRegistry(
        policy.evaluate({ action: action.id, risk: action.risk, node: policyNodeOf(node), principal }), passkeys?.requirement(action.id, action.risk),
      ),
      storedResult: (node, runId) => consumer.storedResult(node, runId),
      resultStoredAt: (node, runId) => consumer.storedAt(node, runId),
      brakes, grantCover: (req) => grants.coverPlan(req),
      notify: {
        pending: (plan, state) => notifier.pending(planAsRun(plan, state), planUrl(plan.id)),
        decided: (plan, state) => notifier.decided(planAsRun(plan, state), planUrl(plan.id)),
      },
      preview: {
        steps: previewSteps,
        read: (steps, node, reason) => previews ? previews.read(steps, node, reason) : Promise.resolve({ runs: [], unavailable: 'the control plane is still starting' }),
      },
    })
    // A key outlives the longest approval window, so a retry of a run still waiting for a person finds it.
    const windows = [durationMs(config.runs.operation_ttl), durationMs('15m'), ...policy.orderedRules.flatMap((r) => r.decision === 'require_approval' ? [durationMs(r.ttl)] : [])]
    const operations = await Operations.open(nc, config.jetstream.replicas, Math.max(...windows), clog)
    // Plan targets' results go to the plans before the consumer takes its first message.
    results.routeElsewhere((m, r) => plans.results.fromConsumer(m, r))
    runs.resolveOtherRuns((principal, id) => plans.targetRun(principal, id))
    await results.start()
    previews = new ImpactPreview(runs, store, clog, audit)
    const approvalSweep = setInterval(() => {
      approvals?.sweep(durationMs(config.runs.approved_dispatch_grace)).catch((err: unknown) => clog.error({ err }, 'approval sweep failed'))
    }, durationMs(config.runs.sweep_interval))
    approvalSweep.unref()
    // Runs whose window closed while no control plane was up expire now.
    await approvals.sweep(durationMs(config.runs.approved_dispatch_grace)).catch((err: unknown) => clog.error({ err }, 'approval sweep failed'))
    clog.info({ packs: catalog.packs.length, actions: catalog.size, principals: principals.size, rules: policy.size, keyId: key.keyId, replicas: config.jetstream.replicas }, 'control plane started')
    let closed = false
    return {
      config, instanceId, log: clog, nc, catalog, principals, policy, scope, fleet, store, audit, auditReader, dispatcher, outputs, metrics, runs, results,
      approvals, breakGlass, passkeys, notifier, runUrl, plans, planUrl, grants, operations, brakes,
      natsConnected: () => connected && !nc.isClosed(),
      readiness,
      onAudit: (listener) => audit.follow(listener),
      close: async () => {
        if (closed) return
        closed = true
        sweeper.stop()
        freezes.stop()
        clearInterval(approvalSweep)
        passkeys?.close()
        await results?.stop()
        await plans.close()
        await notifier.close()
        // The last events this instance wrote leave covered by a signed checkpoint.
        await checkpoints.stop()
        store.stop()
        auditReader.stop()
        audit.stop()
        outputs.stop()
        await fleet.stop()
        await nc.drain().catch(() => nc.close())
      },
    }
  } catch (err) {
    passkeys?.close()
    await nc.close()
    throw err
  }
}

