/**
 * The control plane's own, small Nomad client: `GET /v1/nodes` with its own
 * ACL token (`node:read`), over http or https (a private CA from
 * NOMAD_CACERT). Policy matches node pool, datacenter and class as Nomad
 * states them, never as a runner describes itself.
 */
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { z } from 'zod'

export class NomadApiError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'NomadApiError' }
}

const NodeStubSchema = z.object({
  ID: z.string(),
  Name: z.string(),
  Datacenter: z.string(),
  NodePool: z.string().optional(),
  NodeClass: z.string().optional(),
  Status: z.string().optional(),
}).passthrough()

export interface NomadNodeFacts { id: string, name: string, datacenter: string, node_pool?: string, node_class?: string, status?: string }

export interface NomadNodesOptions {
  /** `http://host:4646` or `https://host:4646`. */
  addr: string
  token?: string | undefined
  /** PEM file of the CA that signed Nomad's certificate (NOMAD_CACERT). */
  caCertFile?: string | undefined
  timeoutMs: number
}

export class NomadNodesClient {
  private readonly url: URL
  private readonly agent: Agent

  constructor(private readonly opts: NomadNodesOptions) {
    try { this.url = new URL('/v1/nodes', opts.addr) } catch (err) { throw new NomadApiError(`nomad.addr "${opts.addr}" is not a URL`, { cause: err }) }
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new NomadApiError(`nomad.addr must be http:// or https://, not ${this.url.protocol}`)
    let ca: string | undefined
    if (opts.caCertFile) {
      try { ca = readFileSync(opts.caCertFile, 'utf8') } catch (err) { throw new NomadApiError(`cannot read nomad.ca_cert ${opts.caCertFile}`, { cause: err }) }
    }
    this.agent = new Agent({ connections: 2, ...(ca ? { connect: { ca } } : {}) })
  }

  /** Where it asks, for messages (no credentials in it). */
  get origin(): string { return this.url.origin }

  /** Every node Nomad knows, with the attributes policy matches on. */
  async list(): Promise<NomadNodeFacts[]> {
    let res
    try {
      res = await request(this.url, {
        dispatcher: this.agent, method: 'GET', headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs,
        headers: { accept: 'application/json', ...(this.opts.token ? { 'x-nomad-token': this.opts.token } : {}) },
      })
    } catch (err) {
      throw new NomadApiError(`Nomad at ${this.url.origin} is unreachable: ${(err as Error).message}`, { cause: err })
    }
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/nodes with ${res.statusCode}: ${text.slice(0, 200).replace(/\s+/g, ' ')}`)
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/nodes with something that is not JSON`) }
    const parsed = z.array(NodeStubSchema).safeParse(json)
    if (!parsed.success) throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/nodes in an unexpected shape: ${parsed.error.issues[0]?.message ?? ''}`)
    return parsed.data.map((n) => ({
      id: n.ID, name: n.Name, datacenter: n.Datacenter,
      ...(n.NodePool !== undefined ? { node_pool: n.NodePool } : {}),
      ...(n.NodeClass !== undefined && n.NodeClass !== '' ? { node_class: n.NodeClass } : {}),
      ...(n.Status !== undefined ? { status: n.Status } : {}),
    }))
  }

  async close(): Promise<void> { await this.agent.close() }
}
