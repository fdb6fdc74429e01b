/**
 * The control plane's moving parts, wired once: NATS connection, streams,
 * catalog, fleet view, run store, audit chain, dispatcher, results consumer,
 * deadline sweeper. `buildApp` puts HTTP in front of this; a dev stack can
 * start it directly.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { PackCatalog } from '@writ/packs'
import { loadSigningKey, type SigningKey } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { AuditChain, type AuditEvent } from './audit/index.js'
import { PrincipalRegistry } from './auth/index.js'
import { durationMs, type Config } from './config.js'
import { FleetView } from './fleet/index.js'
import { Metrics } from './metrics.js'
import { ensureStreams } from './nats/index.js'
import { Policy } from './policy/index.js'
import { DeadlineSweeper, Dispatcher, OutputBuffer, ResultsConsumer, RunService, RunStore } from './runs/index.js'

export class ControlPlaneStartError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ControlPlaneStartError' }
}

export interface ControlPlane {
  config: Config
  instanceId: string
  log: Logger
  nc: NatsConnection
  catalog: PackCatalog
  principals: PrincipalRegistry
  policy: Policy
  fleet: FleetView
  store: RunStore
  audit: AuditChain
  dispatcher: Dispatcher
  outputs: OutputBuffer
  metrics: Metrics
  runs: RunService
  /** The durable consumer recording runner results (stop and start it to hold results back). */
  results: ResultsConsumer
  /** Follows every audit event stored from when it resolves (by any instance); resolves with the unsubscribe. */
  onAudit(listener: (e: AuditEvent) => void): Promise<() => void>
  /** Whether the NATS connection is up (false while reconnecting). */
  natsConnected(): boolean
  /** Drains in-flight work and the NATS connection. */
  close(): Promise<void>
}

/** Connects to NATS with the configured credentials. */
export async function connectNats(config: Config): Promise<NatsConnection> {
  const n = config.nats
  try {
    return await connect({
      servers: n.servers, name: n.name, maxReconnectAttempts: -1, reconnectTimeWait: 250,
      // Async stack traces cost an Error per request; at hundreds of requests a second that shows.
      noAsyncTraces: true,
      ...(n.user !== undefined ? { user: n.user, pass: n.pass } : {}),
      ...(n.token !== undefined ? { token: n.token } : {}),
      ...(n.creds_file !== undefined ? { authenticator: credsAuthenticator(readFileSync(n.creds_file)) } : {}),
    })
  } catch (err) {
    throw new ControlPlaneStartError(`cannot connect to NATS at ${n.servers.join(', ')} (setting nats.servers / WRIT_NATS_URL)`, { cause: err })
  }
}

/**
 * Creates the streams and the runs bucket if missing (idempotent). The seam a
 * dev stack calls before it starts runners, since runners never create streams.
 */
export async function ensureJetStream(nc: NatsConnection, config: Config): Promise<void> {
  await ensureStreams(nc, { replicas: config.jetstream.replicas, auditMaxAge: config.jetstream.audit_max_age, resultsMaxAge: config.jetstream.results_max_age })
}

function loadKey(file: string): SigningKey {
  let pem: string
  try { pem = readFileSync(file, 'utf8') } catch (err) {
    throw new ControlPlaneStartError(`cannot read signing key (setting signing.key_file): ${file}`, { cause: err })
  }
  try { return loadSigningKey(pem) } catch (err) {
    throw new ControlPlaneStartError(`signing.key_file ${file} is not an Ed25519 private key in PKCS#8 PEM`, { cause: err })
  }
}

export async function startControlPlane(config: Config, log: Logger): Promise<ControlPlane> {
  const key = loadKey(config.signing.key_file)
  const catalog = PackCatalog.fromDirs(config.packs.dirs)
  if (catalog.packs.length === 0) {
    const why = catalog.load.errors.slice(0, 3).map((e) => `${e.file}${e.field ? ` (${e.field})` : ''}: ${e.message}`).join('; ')
    throw new ControlPlaneStartError(`no pack loaded from packs.dirs ${config.packs.dirs.join(', ')}${why ? `: ${why}` : ''}`)
  }
  for (const e of catalog.load.errors) log.warn({ file: e.file, field: e.field, pack: e.pack, action: e.action }, `pack load error: ${e.message}`)
  const instanceId = config.instance_id ?? `${hostname()}-${randomBytes(3).toString('hex')}`
  const clog = log.child({ instance: instanceId })

  const nc = await connectNats(config)
  try {
    await ensureJetStream(nc, config)
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
    const fleet = new FleetView(config.fleet.offline_after_missed, clog)
    fleet.start(nc)
    const outputs = new OutputBuffer()
    outputs.start(nc)
    const metrics = new Metrics()
    metrics.counter('writ_runs_total', 'Runs created, by initial status')
    metrics.counter('writ_dispatches_total', 'Writs dispatched, by runner answer')
    metrics.counter('writ_requests_rejected_total', 'Run requests refused before dispatch, by error code')
    metrics.counter('writ_http_requests_total', 'HTTP requests, by route and status code')
    metrics.gauge('writ_nodes_online', 'Nodes with a recent heartbeat', () => fleet.onlineCount)
    metrics.gauge('writ_nodes_known', 'Nodes ever seen since start', () => fleet.size)
    metrics.gauge('writ_audit_appends', 'Audit events appended by this instance', () => audit.appended)
    metrics.gauge('writ_audit_append_conflicts', 'Audit appends retried after another instance appended first', () => audit.conflicts)
    metrics.gauge('writ_catalog_actions', 'Actions in the loaded catalog', () => catalog.size)
    const dispatcher = new Dispatcher(nc, key, { writTtlMs: durationMs(config.runs.writ_ttl), ackTimeoutMs: durationMs(config.runs.ack_timeout) })
    const results = new ResultsConsumer(nc, store, audit, clog)
    await results.start()
    metrics.gauge('writ_results_recorded', 'Runner results recorded by this instance', () => results.recorded)
    const sweeper = new DeadlineSweeper(store, audit, durationMs(config.runs.sweep_interval), clog, (r) => results.storedAt(r.node_id, r.id))
    sweeper.start()
    const principals = new PrincipalRegistry(config.principals)
    const policy = new Policy(config.policy.rules)
    const runs = new RunService({ catalog, fleet, policy, store, audit, dispatcher, metrics, log: clog, instanceId, lostGraceMs: durationMs(config.runs.lost_grace) })
    clog.info({ packs: catalog.packs.length, actions: catalog.size, principals: principals.size, rules: policy.size, keyId: key.keyId, replicas: config.jetstream.replicas }, 'control plane started')
    let closed = false
    return {
      config, instanceId, log: clog, nc, catalog, principals, policy, fleet, store, audit, dispatcher, outputs, metrics, runs, results,
      natsConnected: () => connected && !nc.isClosed(),
      onAudit: (listener) => audit.follow(listener),
      close: async () => {
        if (closed) return
        closed = true
        sweeper.stop()
        await results.stop()
        store.stop()
        audit.stop()
        outputs.stop()
        await fleet.stop()
        await nc.drain().catch(() => nc.close())
      },
    }
  } catch (err) {
    await nc.close()
    throw err
  }
}
