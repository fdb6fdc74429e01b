/**
 * The control plane's own, small Nomad client: `GET /v1/nodes` with its own
 * token (`node:read`), over http or https: a private CA (NOMAD_CACERT), the
 * agent's certificate name when the address is an IP (NOMAD_TLS_SERVER_NAME)
 * and a client certificate for verify_https_client (NOMAD_CLIENT_CERT,
 * NOMAD_CLIENT_KEY). Policy matches node pool, datacenter and class as Nomad
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
  ModifyIndex: z.number().int().optional(),
}).passthrough()

const StringMap = z.record(z.string(), z.string()).nullable().optional()
const NodeDetailSchema = z.object({ ID: z.string(), Attributes: StringMap, Meta: StringMap }).passthrough()

export interface NomadNodeFacts { id: string, name: string, datacenter: string, node_pool?: string, node_class?: string, status?: string, modify_index?: number }

/** What only the full node record holds: the fingerprinted attributes and the operator's meta. */
export interface NomadNodeDetail { attributes: Record<string, string>, meta: Record<string, string> }

export interface NomadNodesOptions {
  /** `http://host:4646` or `https://host:4646`. */
  addr: string
  token?: string | undefined
  /** PEM file of the CA that signed Nomad's certificate (NOMAD_CACERT). */
  caCertFile?: string | undefined
  /** PEM files of the client certificate and its key (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY). */
  clientCertFile?: string | undefined
  clientKeyFile?: string | undefined
  /** The name to verify the agent's certificate against instead of the address's host (NOMAD_TLS_SERVER_NAME). */
  tlsServerName?: string | undefined
  timeoutMs: number
}

/** Reads one PEM file of the TLS settings, naming the setting when it cannot. */
function readPem(setting: string, file: string, want: RegExp, what: string): string {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (err) { throw new NomadApiError(`cannot read ${setting} ${file}: ${(err as Error).message}`, { cause: err }) }
  if (!want.test(text)) throw new NomadApiError(`${setting} ${file} does not hold a PEM ${what}`)
  return text
}
const CERT_PEM = /-----BEGIN CERTIFICATE-----/
const KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/

export class NomadNodesClient {
  private readonly url: URL
  private readonly agent: Agent

  constructor(private readonly opts: NomadNodesOptions) {
    try { this.url = new URL('/v1/nodes', opts.addr) } catch (err) { throw new NomadApiError(`nomad.addr "${opts.addr}" is not a URL`, { cause: err }) }
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new NomadApiError(`nomad.addr must be http:// or https://, not ${this.url.protocol}`)
    const tls = {
      ...(opts.caCertFile ? { ca: readPem('nomad.ca_cert', opts.caCertFile, CERT_PEM, 'certificate') } : {}),
      ...(opts.clientCertFile ? { cert: readPem('nomad.client_cert', opts.clientCertFile, CERT_PEM, 'certificate') } : {}),
      ...(opts.clientKeyFile ? { key: readPem('nomad.client_key', opts.clientKeyFile, KEY_PEM, 'private key') } : {}),
      ...(opts.tlsServerName ? { servername: opts.tlsServerName } : {}),
    }
    if (Object.keys(tls).length > 0 && this.url.protocol !== 'https:') throw new NomadApiError(`nomad TLS settings need an https:// nomad.addr, not ${this.url.protocol}//`)
    this.agent = new Agent({ connections: 4, ...(Object.keys(tls).length > 0 ? { connect: tls } : {}) })
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
      ...(n.ModifyIndex !== undefined ? { modify_index: n.ModifyIndex } : {}),
    }))
  }

  /** `GET /v1/node/:id`: the node's attributes and meta (not in the list's stubs). */
  async detail(id: string): Promise<NomadNodeDetail> {
    const url = new URL(`/v1/node/${encodeURIComponent(id)}`, this.url)
    let res
    try {
      res = await request(url, {
        dispatcher: this.agent, method: 'GET', headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs,
        headers: { accept: 'application/json', ...(this.opts.token ? { 'x-nomad-token': this.opts.token } : {}) },
      })
    } catch (err) {
      throw new NomadApiError(`Nomad at ${this.url.origin} is unreachable: ${(err as Error).message}`, { cause: err })
    }
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/node/${id} with ${res.statusCode}: ${text.slice(0, 200).replace(/\s+/g, ' ')}`)
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/node/${id} with something that is not JSON`) }
    const parsed = NodeDetailSchema.safeParse(json)
    if (!parsed.success || parsed.data.ID !== id) throw new NomadApiError(`Nomad at ${this.url.origin} answered GET /v1/node/${id} in an unexpected shape`)
    return { attributes: parsed.data.Attributes ?? {}, meta: parsed.data.Meta ?? {} }
  }

  async close(): Promise<void> { await this.agent.close() }
}
