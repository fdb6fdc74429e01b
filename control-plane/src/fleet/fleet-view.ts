/**
 * The fleet as the runners' heartbeats describe it. A node is online while its
 * last heartbeat is younger than `offlineAfterMissed` of its own intervals.
 * Its placement (pool, datacenter, class) is what the Nomad API says, never
 * what the heartbeat claims.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { HeartbeatSchema, subjects, type Heartbeat } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { NodeAttributeSource, type NodeAttributes } from './node-attributes.js'

export interface FleetNode {
  id: string
  name: string
  online: boolean
  draining: boolean
  last_seen: string
  version: string
  started_at: string
  in_flight: number
  interval_ms: number
  packs: Heartbeat['packs']
  /** The approver registry the runner says it holds (serial, digest), when it has one. */
  approver_registry?: Heartbeat['approver_registry']
  /** From the Nomad API, or `unknown` with the reason. */
  nomad: NodeAttributes
}

interface Seen { hb: Heartbeat, at: number }

export class FleetView {
  private readonly nodes = new Map<string, Seen>()
  private sub: Subscription | undefined
  private malformed = 0

  constructor(
    private readonly offlineAfterMissed: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly attributes: NodeAttributeSource = new NodeAttributeSource(undefined, { refreshMs: 0, maxStaleMs: 0 }, log),
  ) {}

  /** Subscribes to every runner's heartbeat. */
  start(nc: NatsConnection): void {
    this.sub = nc.subscribe(subjects.allHeartbeats, {
      callback: (err, msg) => {
        if (err) return
        let json: unknown
        try { json = msg.json() } catch { json = undefined }
        const parsed = HeartbeatSchema.safeParse(json)
        // The subject names the sender — the server lets a runner's credentials publish only on its own
        // node's subjects — so a heartbeat whose body claims another node is ignored.
        if (!parsed.success || msg.subject !== subjects.heartbeat(parsed.data.node_id)) {
          if (this.malformed++ % 100 === 0) this.log.warn({ subject: msg.subject }, 'ignored malformed heartbeat')
          return
        }
        this.observe(parsed.data)
      },
    })
  }

  observe(hb: Heartbeat): void {
    const prior = this.nodes.get(hb.node_id)
    if (prior && prior.hb.started_at === hb.started_at && prior.hb.seq > hb.seq) return
    if (!prior || !this.isOnline(prior)) this.log.info({ node: hb.node_id, name: hb.node_name }, 'node online')
    if (!this.attributes.knows(hb.node_id)) this.attributes.requestRefresh()
    this.nodes.set(hb.node_id, { hb, at: this.now() })
  }

  private isOnline(s: Seen): boolean {
    return this.now() - s.at < s.hb.interval_ms * this.offlineAfterMissed
  }

  private view(s: Seen): FleetNode {
    const hb = s.hb
    return {
      id: hb.node_id, name: hb.node_name, online: this.isOnline(s), draining: hb.draining,
      last_seen: new Date(s.at).toISOString(), version: hb.version, started_at: hb.started_at,
      in_flight: hb.in_flight, interval_ms: hb.interval_ms, packs: hb.packs, nomad: this.attributes.attributesOf(hb.node_id),
      ...(hb.approver_registry ? { approver_registry: hb.approver_registry } : {}),
    }
  }

  list(): FleetNode[] {
    return [...this.nodes.values()].map((s) => this.view(s)).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Finds a node by id, else by its (unique) name. */
  find(idOrName: string): FleetNode | undefined {
    const byId = this.nodes.get(idOrName)
    if (byId) return this.view(byId)
    const named = [...this.nodes.values()].filter((s) => s.hb.node_name === idOrName)
    return named.length === 1 ? this.view(named[0] as Seen) : undefined
  }

  /**
   * When each runner last heartbeated, as this instance received it. A node
   * that is offline and that Nomad no longer lists (purged, garbage
   * collected) is left out, so a removed node does not stay "quiet" forever.
   */
  heartbeats(): Array<{ id: string, name: string, at: number }> {
    const out: Array<{ id: string, name: string, at: number }> = []
    for (const s of this.nodes.values()) {
      if (!this.isOnline(s) && this.attributes.unlisted(s.hb.node_id)) continue
      out.push({ id: s.hb.node_id, name: s.hb.node_name, at: s.at })
    }
    return out
  }

  /** The node's attributes and meta as the Nomad API states them, or why they are unknown (plan selectors read them). */
  nomadDetail(nodeId: string): ReturnType<NodeAttributeSource['detailOf']> {
    return this.attributes.detailOf(nodeId)
  }

  get onlineCount(): number {
    let n = 0
    for (const s of this.nodes.values()) if (this.isOnline(s)) n++
    return n
  }

  get size(): number { return this.nodes.size }

  async stop(): Promise<void> {
    this.sub?.unsubscribe()
    await this.attributes.stop()
  }
}
