/**
 * The node attributes policy matches on (pool, datacenter, class), as the
 * Nomad API states them: refreshed every interval and when an unknown node
 * heartbeats, kept while the last answer is fresh enough, and a clear
 * "unknown" (with the reason) when Nomad is not configured, does not know the
 * node, or has not answered for longer than `max_stale` — which no granting
 * rule on attributes matches and every denying one does (policy.ts).
 */
import type { Logger } from 'pino'
import type { NomadNodeDetail, NomadNodeFacts, NomadNodesClient } from './nomad-nodes.js'

export type NodeAttributes =
  | { source: 'nomad', datacenter: string, node_pool?: string, node_class?: string, nomad_name: string, nomad_status?: string }
  | { source: 'unknown', reason: string }

export interface NodeAttributeOptions { refreshMs: number, maxStaleMs: number }

/** Not more often than this on demand (a flood of heartbeats from unknown ids). */
const MIN_REFRESH_GAP_MS = 2000

/** Full node records read at once while refreshing (a new fleet of 1,000 is read in 1,000 requests, a few at a time). */
const DETAIL_CONCURRENCY = 4

export class NodeAttributeSource {
  private nodes = new Map<string, NomadNodeFacts>()
  /** Attributes and meta per node id, with the modify index they were read at (read again when it moves). */
  private details = new Map<string, NomadNodeDetail & { index: number | undefined }>()
  private lastOk = 0
  private lastError: string | undefined
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private lastAttempt = 0

  constructor(private readonly client: NomadNodesClient | undefined, private readonly opts: NodeAttributeOptions, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  start(): void {
    if (!this.client) return
    const tick = (): void => {
      void this.refresh().finally(() => { if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.refreshMs) })
    }
    this.timer = setTimeout(tick, 0)
  }

  /** Asks Nomad again soon (a node Nomad did not list has appeared). */
  requestRefresh(): void {
    if (!this.client || this.inFlight || this.now() - this.lastAttempt < MIN_REFRESH_GAP_MS) return
    void this.refresh()
  }

  /** One `GET /v1/nodes`; resolves when done, whatever the outcome. */
  refresh(): Promise<void> {
    if (!this.client) return Promise.resolve()
    const client = this.client
    this.inFlight ??= (async () => {
      this.lastAttempt = this.now()
      try {
        const list = await client.list()
        this.nodes = new Map(list.map((n) => [n.id, n]))
        await this.readDetails(client, list)
        this.lastOk = this.now()
        if (this.lastError) this.log.info({ nomad: client.origin, nodes: list.length }, 'Nomad node list readable again')
        this.lastError = undefined
      } catch (err) {
        if (this.lastError === undefined) this.log.warn({ err }, 'cannot read the Nomad node list; node attributes turn unknown once the last list is stale')
        this.lastError = (err as Error).message
      } finally { this.inFlight = undefined }
    })()
    return this.inFlight
  }

  /** Reads the full record of every node that is new or whose modify index moved; forgets nodes Nomad no longer lists. */
  private async readDetails(client: NomadNodesClient, list: readonly NomadNodeFacts[]): Promise<void> {
    for (const id of this.details.keys()) if (!this.nodes.has(id)) this.details.delete(id)
    const due = list.filter((n) => { const d = this.details.get(n.id); return !d || d.index === undefined || d.index !== n.modify_index })
    let next = 0
    await Promise.all(Array.from({ length: Math.min(DETAIL_CONCURRENCY, due.length) }, async () => {
      while (next < due.length) {
        const n = due[next++] as NomadNodeFacts
        try { this.details.set(n.id, { ...await client.detail(n.id), index: n.modify_index }) } catch (err) {
          // Its attributes stay unknown (a selector on them fails closed) until the next refresh reads it.
          this.details.delete(n.id)
          this.log.debug({ err, node: n.id }, 'cannot read a Nomad node record')
        }
      }
    }))
  }

  /**
   * The node's attributes and meta as Nomad states them, or the reason they
   * are unknown (Nomad not configured, the list stale, the node not listed or
   * its record not read).
   */
  detailOf(nodeId: string): NomadNodeDetail | { unknown: string } {
    const a = this.attributesOf(nodeId)
    if (a.source === 'unknown') return { unknown: a.reason }
    return this.details.get(nodeId) ?? { unknown: `Nomad's record of node ${nodeId} has not been read` }
  }

  attributesOf(nodeId: string): NodeAttributes {
    if (!this.client) return { source: 'unknown', reason: 'the Nomad API is not configured (nomad.addr / NOMAD_ADDR)' }
    if (this.lastOk === 0) return { source: 'unknown', reason: this.lastError ?? 'the Nomad node list has not been read yet' }
    const age = this.now() - this.lastOk
    if (age > this.opts.maxStaleMs) return { source: 'unknown', reason: `the Nomad node list is ${Math.round(age / 1000)} s old: ${this.lastError ?? 'no answer'}` }
    const n = this.nodes.get(nodeId)
    if (!n) return { source: 'unknown', reason: `Nomad lists no node with id ${nodeId}` }
    return {
      source: 'nomad', datacenter: n.datacenter, nomad_name: n.name,
      ...(n.node_pool !== undefined ? { node_pool: n.node_pool } : {}),
      ...(n.node_class !== undefined ? { node_class: n.node_class } : {}),
      ...(n.status !== undefined ? { nomad_status: n.status } : {}),
    }
  }

  knows(nodeId: string): boolean { return this.nodes.has(nodeId) }

  /** Whether a fresh Nomad node list leaves the node out (purged or garbage collected); false while Nomad is not configured or not answering. */
  unlisted(nodeId: string): boolean {
    return this.client !== undefined && this.lastOk > 0 && this.now() - this.lastOk <= this.opts.maxStaleMs && !this.nodes.has(nodeId)
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.inFlight
    await this.client?.close()
  }
}
