/**
 * A stand-in Nomad agent on 127.0.0.1 for the calls the stock `nomad` pack
 * makes. It answers with the published API samples in ../shared/fixtures/nomad
 * (read at start, never copied into this repository), errors the way the
 * agent does (plain-text bodies, `text/plain; charset=utf-8`, the exact texts
 * and statuses listed in the fixtures README), and records every request so a
 * test can assert that exactly the documented call was made.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { FIXTURES_DIR } from './fixtures-dir.js'

const NOMAD_FIXTURES = join(FIXTURES_DIR, 'nomad')

export interface RecordedNomadRequest {
  method: string
  /** Path without the query string. */
  path: string
  query: Record<string, string>
  headers: IncomingHttpHeaders
  /** Raw request body as received ('' when none). */
  body: string
}

export interface NomadDoubleOptions {
  /** When set, requests must carry this token (X-Nomad-Token or Authorization: Bearer). */
  token?: string
  /** A token that may read but not write (node:read, read-job only). */
  readOnlyToken?: string
  /** Listen on a unix socket in a temp dir instead of loopback TCP, like the Task API socket. */
  unixSocket?: boolean
  /** Listen on this unix socket path (the Task API socket where a job's NOMAD_ADDR names it). */
  socketPath?: string
  /** Allocations served beside the fixtures' (full `GET /v1/allocation/:id` objects, e.g. one with a CSI volume). */
  extraAllocs?: Array<Record<string, unknown> & { ID: string, NodeID?: string }>
  /**
   * More client nodes, served beside the fixtures' one: in `GET /v1/nodes` as the fixture's
   * stub with these values, in `GET /v1/node/:id` as the fixture's full node with them
   * (`attributes` and `meta` merged over the fixture's). Changeable while the double runs.
   */
  fleet?: SimulatedNomadNode[]
  /** Serve https with this key and certificate (PEM), like an agent with `tls { http = true }`; `ca` + `requireClientCert` is verify_https_client. */
  tls?: { key: string, cert: string, ca?: string, requireClientCert?: boolean }
}

export interface SimulatedNomadNode {
  id: string, name: string, datacenter?: string, pool?: string, nodeClass?: string, status?: string
  attributes?: Record<string, string>, meta?: Record<string, string>
}

export interface NomadDouble {
  /** `http://127.0.0.1:<port>`, `https://127.0.0.1:<port>` with `tls`, or `unix:///tmp/…/api.sock` with `unixSocket`. */
  addr: string
  requests: RecordedNomadRequest[]
  /** While true, requests are recorded but never answered (for timeout and cancel tests). */
  stall: boolean
  /** The simulated client nodes (`fleet`); edit to change what Nomad says. */
  fleet: SimulatedNomadNode[]
  /**
   * Something changes an allocation (a client update, a restart), as Nomad records it: its
   * ModifyIndex moves to the next raft index. Answers the index before and after.
   */
  bumpAllocation(id: string): { from: number, to: number }
  /** The node and allocation IDs the fixtures describe. */
  ids: { node: string, nodeWithAllocs: string, agentNode: string, alloc: string, nodeAlloc: string }
  close(): Promise<void>
}

/** The fixtures' allocation with another id, node, job and group, and `volumes` as its group's volume requests. */
export function allocationLike(over: { id: string, nodeId: string, jobId: string, taskGroup: string, volumes?: Record<string, Record<string, unknown>> }): Record<string, unknown> & { ID: string, NodeID: string } {
  const a = fixture('GET_allocation.json') as Record<string, any>
  const group = structuredClone((a.Job.TaskGroups as Array<Record<string, any>>).find((g) => g.Name === a.TaskGroup) ?? {})
  group.Name = over.taskGroup
  group.Volumes = over.volumes ?? null
  return {
    ...a, ID: over.id, NodeID: over.nodeId, JobID: over.jobId, TaskGroup: over.taskGroup, Name: `${over.jobId}.${over.taskGroup}[0]`,
    Job: { ...a.Job, ID: over.jobId, Name: over.jobId, TaskGroups: [group] },
  }
}

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(join(NOMAD_FIXTURES, name), 'utf8')) as unknown
}

/**
 * `GET_node.json` is not valid JSON as published: the docs sample lacks the
 * comma after the `"HostNetworks"` object (fixtures README). The double serves
 * a copy repaired in memory by inserting exactly that comma, so what goes on
 * the wire is what a real agent would send.
 */
function repairedNodeFixture(): unknown {
  const text = readFileSync(join(NOMAD_FIXTURES, 'GET_node.json'), 'utf8')
  const repaired = text.replace(/(\n {2}\})(\n {2}"ID": )/, '$1,$2')
  if (repaired === text) throw new Error('GET_node.json: the known missing comma was not found; has the fixture changed?')
  return JSON.parse(repaired) as unknown
}

interface WithIds { ID: string, NodeID?: string }

/** Starts the double on a free loopback port. */
export async function startNomadDouble(options: NomadDoubleOptions = {}): Promise<NomadDouble> {
  const node = repairedNodeFixture() as WithIds
  const nodeList = fixture('GET_nodes.json') as WithIds[]
  const agentSelf = fixture('GET_agent_self.json') as { stats: { client: { node_id: string } } }
  const alloc = fixture('GET_allocation.json') as WithIds
  const nodeAllocs = fixture('GET_node_allocations.json') as WithIds[]
  const stopAnswer = fixture('POST_allocation_stop.json')
  const drainAnswer = fixture('POST_node_drain.json')
  const eligibilityAnswer = fixture('POST_node_eligibility.json')

  const allAllocs = [alloc, ...nodeAllocs, ...(options.extraAllocs ?? [])]
  const stubFixture = nodeList[0] as unknown as Record<string, unknown>
  const simulatedStub = (n: SimulatedNomadNode): Record<string, unknown> => ({
    ...stubFixture, ID: n.id, Name: n.name, Datacenter: n.datacenter ?? 'dc1', NodePool: n.pool ?? 'default', NodeClass: n.nodeClass ?? '',
    Status: n.status ?? 'ready', Attributes: { ...(stubFixture.Attributes as object), ...(n.attributes?.['os.name'] ? { 'os.name': n.attributes['os.name'] } : {}) },
    ModifyIndex: simulatedIndex(n),
  })
  const simulatedNode = (n: SimulatedNomadNode): Record<string, unknown> => {
    const full = node as unknown as Record<string, unknown>
    return {
      ...full, ID: n.id, Name: n.name, Datacenter: n.datacenter ?? 'dc1', NodePool: n.pool ?? 'default', NodeClass: n.nodeClass ?? '',
      Status: n.status ?? 'ready', Attributes: { ...(full.Attributes as object), ...n.attributes }, Meta: { ...(full.Meta as object), ...n.meta },
      ModifyIndex: simulatedIndex(n),
    }
  }
  /** A node's modify index moves when what the test says about it changes, as Nomad's does. */
  const simulatedIndex = (n: SimulatedNomadNode): number => {
    let h = 7
    for (const c of JSON.stringify(n)) h = (h * 31 + c.charCodeAt(0)) % 1_000_000_007
    return 1000 + h
  }
  const knownNodes = new Set([node.ID, ...nodeList.map((n) => n.ID), agentSelf.stats.client.node_id, ...allAllocs.map((a) => a.NodeID ?? '')].filter(Boolean))
  const nodeWithAllocs = nodeAllocs[0]?.NodeID ?? ''

  const requests: RecordedNomadRequest[] = []
  const stalled: ServerResponse[] = []
  let index = 4000

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void collect(req).then((body) => {
      const url = new URL(req.url ?? '/', 'http://nomad.invalid')
      requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body })
      if (double.stall) { stalled.push(res); return }
      route(req.method ?? '', url.pathname, body, req.headers, res)
    })
  }
  const tls = options.tls
  const server = tls
    ? createHttpsServer({ key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.requireClientCert === true, rejectUnauthorized: tls.requireClientCert === true }, handler)
    : createServer(handler)

  const text = (res: ServerResponse, status: number, message: string): void => {
    // The agent's error shape: plain text, this exact content type (command/agent/http.go).
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(message)
  }
  const json = (res: ServerResponse, value: unknown, blocking: boolean): void => {
    res.writeHead(200, { 'content-type': 'application/json', ...(blocking ? { 'x-nomad-index': String(index) } : {}) })
    res.end(JSON.stringify(value))
  }

  function authorize(headers: IncomingHttpHeaders, write: boolean): string | undefined {
    if (options.token === undefined) return undefined
    const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1]
    const given = (headers['x-nomad-token'] as string | undefined) ?? bearer
    if (given === undefined || given === '') return 'Permission denied'
    if (given === options.token) return undefined
    if (given === options.readOnlyToken) return write ? 'Permission denied' : undefined
    return 'ACL token not found'
  }

  function route(method: string, path: string, body: string, headers: IncomingHttpHeaders, res: ServerResponse): void {
    const seg = path.split('/').slice(1)
    const write = method === 'POST' || method === 'PUT'
    const denied = authorize(headers, write)
    if (denied) return text(res, 403, denied)

    if (seg[0] !== 'v1') return text(res, 404, '404 page not found')
    if (seg[1] === 'nodes' && seg.length === 2) return method === 'GET' ? json(res, [...nodeList, ...double.fleet.map(simulatedStub)], true) : text(res, 405, 'Invalid method')
    if (seg[1] === 'agent' && seg[2] === 'self' && seg.length === 3) return method === 'GET' ? json(res, agentSelf, false) : text(res, 405, 'Invalid method')

    if (seg[1] === 'allocation' && seg[2] !== undefined) {
      const found = allAllocs.find((a) => a.ID === seg[2])
      if (seg.length === 3) {
        if (method !== 'GET') return text(res, 405, 'Invalid method')
        return found ? json(res, found, true) : text(res, 404, 'alloc not found')
      }
      if (seg.length === 4 && seg[3] === 'stop') {
        if (!write) return text(res, 405, 'Invalid method')
        if (!found) return text(res, 404, 'allocation not found')
        index++
        return json(res, stopAnswer, false)
      }
      return text(res, 404, 'resource not found')
    }

    if (seg[1] === 'node' && seg[2] !== undefined) {
      const id = seg[2]
      if (seg.length === 3) {
        if (method !== 'GET') return text(res, 405, 'Invalid method')
        const simulated = double.fleet.find((n) => n.id === id)
        if (simulated) return json(res, simulatedNode(simulated), true)
        return id === node.ID ? json(res, node, true) : text(res, 404, 'node not found')
      }
      if (seg.length === 4 && seg[3] === 'allocations') {
        if (method !== 'GET') return text(res, 405, 'Invalid method')
        return json(res, allAllocs.filter((a) => a.NodeID === id), true)
      }
      if (seg.length === 4 && (seg[3] === 'drain' || seg[3] === 'eligibility')) {
        if (!write) return text(res, 405, 'Invalid method')
        let parsed: Record<string, unknown>
        try { parsed = JSON.parse(body) as Record<string, unknown> } catch (e) { return text(res, 400, (e as Error).message) }
        if (seg[3] === 'eligibility' && parsed.Eligibility !== 'eligible' && parsed.Eligibility !== 'ineligible') {
          return text(res, 400, `invalid scheduling eligibility "${String(parsed.Eligibility)}"`)
        }
        // Unknown nodes on these two are a plain RPC error, hence 500 and not 404 (fixtures README).
        if (!knownNodes.has(id)) return text(res, 500, 'node not found')
        index++
        return json(res, seg[3] === 'drain' ? drainAnswer : eligibilityAnswer, false)
      }
    }
    return text(res, 404, '404 page not found')
  }

  const socketDir = options.unixSocket && !options.socketPath ? mkdtempSync(join(tmpdir(), 'writ-nomad-double-')) : undefined
  let addr: string
  if (socketDir || options.socketPath) {
    const socketPath = options.socketPath ?? join(socketDir as string, 'api.sock')
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    addr = `unix://${socketPath}`
  } else {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    addr = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const double: NomadDouble = {
    addr,
    requests,
    stall: false,
    fleet: options.fleet ?? [],
    bumpAllocation: (id) => {
      const found = allAllocs.find((a) => a.ID === id) as (WithIds & { ModifyIndex?: number }) | undefined
      if (!found) throw new Error(`the Nomad double has no allocation ${id}`)
      const from = found.ModifyIndex ?? 0
      found.ModifyIndex = ++index
      return { from, to: found.ModifyIndex }
    },
    ids: { node: node.ID, nodeWithAllocs, agentNode: agentSelf.stats.client.node_id, alloc: alloc.ID, nodeAlloc: nodeAllocs[0]?.ID ?? '' },
    close: () => new Promise<void>((resolve) => {
      for (const res of stalled) res.destroy()
      server.closeAllConnections()
      server.close(() => {
        if (socketDir) rmSync(socketDir, { recursive: true, force: true })
        resolve()
      })
    }),
  }
  return double
}

function collect(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')))
    req.on('error', reject)
  })
}
