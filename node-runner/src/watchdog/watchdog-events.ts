/**
 * Watchdog events on NATS (`writ.v1.node.<id>.event.<kind>`), so the audit
 * trail and portal show automated interventions next to human ones. Core NATS
 * publish: the WRIT_EVENTS stream captures them when it exists. Optional —
 * without a NATS URL nothing is sent — and never blocking a pass: until the
 * connection is up, events are logged and dropped.
 */
import { readFileSync } from 'node:fs'
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node'
import { runnerInboxPrefix, NodeEventSchema, PROTOCOL_VERSION, subjects, type NodeEvent } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { natsTlsOptions } from '../nats-tls.js'

export type WatchdogEventKind = 'multipath_stuck' | 'multipath_kick' | 'multipath_recovered' | 'multipath_kick_released'

export interface WatchdogEvent {
  kind: WatchdogEventKind
  severity: NodeEvent['severity']
  message: string
  data: Record<string, unknown>
}

export interface EventPublisherOptions {
  natsUrl?: string
  natsCreds?: string
  /** PEM file of the CA of the NATS servers' certificates: TLS only, verified against it. */
  natsCa?: string
  /** The name on the NATS servers' certificate, when they are reached by IP. */
  natsTlsServerName?: string
  nodeId: string
  nodeName: string
  log: Logger
}

export class WatchdogEventPublisher {
  private nc: NatsConnection | undefined
  private closed = false
  /** Events published (for logs and tests). */
  published = 0

  private constructor(private readonly options: EventPublisherOptions) {}

  /**
   * Starts connecting in the background (retrying forever) when a URL is set.
   * @throws {Error} naming the flag when the creds or CA file cannot be read (a configuration error).
   */
  static start(options: EventPublisherOptions): WatchdogEventPublisher {
    const p = new WatchdogEventPublisher(options)
    if (options.natsUrl === undefined) return p
    const read = (flag: string, file: string): Buffer => {
      try { return readFileSync(file) } catch (e) { throw new Error(`${flag}: ${(e as Error).message}`, { cause: e }) }
    }
    const authenticator = options.natsCreds ? credsAuthenticator(read('--nats-creds', options.natsCreds)) : undefined
    if (options.natsCa !== undefined && !/-----BEGIN CERTIFICATE-----/.test(read('--nats-ca', options.natsCa).toString())) {
      throw new Error(`--nats-ca: ${options.natsCa} does not hold a PEM certificate`)
    }
    connect({
      servers: options.natsUrl.split(','), name: `writ-multipath-watchdog:${options.nodeId}`, inboxPrefix: runnerInboxPrefix(options.nodeId),
      maxReconnectAttempts: -1, reconnectTimeWait: 1000, reconnectJitter: 500, waitOnFirstConnect: true,
      ...(authenticator ? { authenticator } : {}),
      ...natsTlsOptions(options.natsCa, options.natsTlsServerName),
    }).then((nc) => {
      if (p.closed) { void nc.close(); return }
      p.nc = nc
      options.log.info({ server: nc.getServer() }, 'connected to NATS; watchdog events will be published')
    }, (e: unknown) => options.log.error({ err: e }, 'NATS connection failed; watchdog events will not be published'))
    return p
  }

  /** Publishes one event; returns whether it went out. Never throws. */
  publish(event: WatchdogEvent): boolean {
    const payload = NodeEventSchema.safeParse({
      v: PROTOCOL_VERSION, node_id: this.options.nodeId, node_name: this.options.nodeName, at: new Date().toISOString(),
      source: 'multipath-watchdog', kind: event.kind, severity: event.severity, message: event.message.slice(0, 4000), data: event.data,
    })
    if (!payload.success) {
      this.options.log.error({ kind: event.kind, issues: payload.error.issues }, 'watchdog event does not match NodeEventSchema; not sent')
      return false
    }
    if (!this.nc || this.nc.isClosed()) {
      if (this.options.natsUrl !== undefined) this.options.log.debug({ kind: event.kind }, 'not connected to NATS; event dropped')
      return false
    }
    try {
      this.nc.publish(subjects.event(this.options.nodeId, event.kind), JSON.stringify(payload.data))
      this.published++
      return true
    } catch (e) {
      this.options.log.warn({ err: e, kind: event.kind }, 'publishing a watchdog event failed')
      return false
    }
  }

  /** Flushes what was published and closes the connection. */
  async close(): Promise<void> {
    this.closed = true
    const nc = this.nc
    this.nc = undefined
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close())
  }
}
