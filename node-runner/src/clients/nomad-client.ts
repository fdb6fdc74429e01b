/**
 * A small client for the handful of Nomad HTTP API calls the stock packs make.
 * It speaks to `http(s)://host:port` or to a unix socket (`unix:///…/api.sock`,
 * the Task API a workload-identity token is used with), sends the ACL token
 * as `X-Nomad-Token`, streams the answer to a sink, and turns Nomad's
 * plain-text error bodies ("alloc not found", "Permission denied") into an
 * `ApiStatusError`. The token is only ever placed in that header.
 * Over https it verifies the agent against `tls.ca` (NOMAD_CACERT) when
 * given, else the system's CAs, and presents a client certificate when the
 * agent requires one (verify_https_client).
 */
import { ApiStatusError, ApiUnreachableError, describeCause, oneLine, readCappedText } from './api-errors.js'
import { closeHttpAgents, sendHttp, type HttpAnswer } from './http-transport.js'

/** PEM contents (not paths) for an https agent: the NOMAD_CACERT / NOMAD_CLIENT_CERT / NOMAD_CLIENT_KEY files, and NOMAD_TLS_SERVER_NAME. */
export interface NomadTls {
  ca?: string | undefined
  cert?: string | undefined
  key?: string | undefined
  /** The name the agent's certificate must carry when it differs from the address's host (Nomad's `client.<region>.nomad`). */
  servername?: string | undefined
}

export interface NomadTarget {
  /** `http://127.0.0.1:4646`, `https://nomad.service:4646` or `unix:///secrets/api.sock`. */
  addr: string
  token?: string | undefined
  tls?: NomadTls | undefined
}

export interface NomadCall {
  method: string
  /** Path with query string, already URL-encoded by the pack contract. */
  path: string
  /** JSON body; sent only when defined. */
  body?: unknown
}

interface Endpoint { origin: string, socketPath?: string, shown: string }

/** Parses a Nomad address; throws `ApiUnreachableError` naming the address when it is unusable. */
export function parseNomadAddr(addr: string): Endpoint {
  if (addr.startsWith('unix://')) {
    const socketPath = addr.slice('unix://'.length)
    if (!socketPath.startsWith('/')) throw new ApiUnreachableError('nomad', `address "${addr}" must name an absolute socket path (unix:///path/api.sock)`)
    return { origin: 'http://localhost', socketPath, shown: addr }
  }
  let url: URL
  try { url = new URL(addr) } catch { throw new ApiUnreachableError('nomad', `address "${oneLine(addr, 200)}" is not a URL (expected http://host:4646 or unix:///path/api.sock)`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ApiUnreachableError('nomad', `address scheme "${url.protocol}" is not supported (http, https or unix)`)
  // The origin drops any user:password@ so it can never reach a message.
  return { origin: url.origin, shown: url.origin }
}

/**
 * Performs one call. Response body bytes go to `sink` as they arrive (2xx
 * only). Rejects with `ApiStatusError` on 4xx/5xx, `ApiUnreachableError` when
 * Nomad cannot be reached, or the abort reason when `signal` fires.
 */
export async function callNomad(target: NomadTarget, call: NomadCall, sink: (chunk: Buffer) => void, signal: AbortSignal): Promise<void> {
  const ep = parseNomadAddr(target.addr)
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'writ-node-runner' }
  if (target.token) headers['x-nomad-token'] = target.token
  let body: string | undefined
  if (call.body !== undefined) {
    body = JSON.stringify(call.body)
    headers['content-type'] = 'application/json'
  }
  let res: HttpAnswer
  try {
    res = await sendHttp({ origin: ep.origin, socketPath: ep.socketPath, tls: ep.origin.startsWith('https:') ? target.tls : undefined }, { method: call.method, path: call.path, headers, body }, signal)
  } catch (e) {
    if (signal.aborted) throw signal.reason
    throw new ApiUnreachableError('nomad', unreachable(ep, e), { cause: e })
  }
  try {
    if (res.statusCode >= 400) {
      // Nomad answers errors in plain text ("alloc not found", "Permission denied").
      throw new ApiStatusError('nomad', res.statusCode, oneLine(await readCappedText(res.body)))
    }
    for await (const chunk of res.body) sink(chunk as Buffer)
  } catch (e) {
    res.body.destroy()
    if (e instanceof ApiStatusError) throw e
    if (signal.aborted) throw signal.reason
    throw new ApiUnreachableError('nomad', `answer from ${ep.shown} broke off: ${describeCause(e)}`, { cause: e })
  }
}

/**
 * Why the agent could not be reached, in the words an operator looks for:
 * nothing listening at the address means there is no Nomad agent there
 * (a dev host, a stopped agent, a Task API socket that does not exist).
 */
function unreachable(ep: Endpoint, e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code
  if (code === 'ECONNREFUSED' || code === 'ENOENT') return `no Nomad agent at ${ep.shown} (${describeCause(e)})`
  return `cannot reach ${ep.shown}: ${describeCause(e)}`
}

/** Closes every kept-alive connection (runner shutdown, tests). */
export function closeNomadClients(): void {
  closeHttpAgents()
}
