/**
 * One HTTP request over node:http / node:https, for the Nomad and Docker
 * clients. Node's own client parses with llhttp compiled into the binary;
 * undici's parser is WebAssembly, which the runner's job profile
 * (`NODE_OPTIONS=--jitless`, nodejs/node#61166) removes from the runtime — under
 * that profile undici's first request is an unhandled `ReferenceError:
 * WebAssembly is not defined` that ends the process (nodejs/undici#4708).
 * So the runner speaks HTTP through this, and works under the environment its
 * job gives it.
 *
 * Connections are kept alive per endpoint (and per TLS identity) in a small
 * agent; idle sockets do not hold the process open.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { createHash } from 'node:crypto'

/** TLS material for an https endpoint, as PEM text. */
export interface EndpointTls {
  ca?: string | undefined
  cert?: string | undefined
  key?: string | undefined
  /** The name the server's certificate must carry when it differs from the address's host. */
  servername?: string | undefined
}

/** Where a request goes: an http(s) origin, or a unix socket (the origin is then only the Host header). */
export interface HttpEndpoint {
  origin: string
  socketPath?: string | undefined
  tls?: EndpointTls | undefined
}

export interface HttpRequest {
  method: string
  /** Path with query string, already encoded. */
  path: string
  headers: Record<string, string>
  body?: string | undefined
}

/** An answer whose body is still to be read (or destroyed). */
export interface HttpAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: IncomingMessage
}

/** Sockets kept per endpoint: the runner makes a few calls at a time, never many. */
const MAX_SOCKETS = 4

const agents = new Map<string, HttpAgent>()

function agentFor(ep: HttpEndpoint): HttpAgent {
  const https = ep.origin.startsWith('https:')
  const tlsId = https && ep.tls ? createHash('sha256').update(JSON.stringify([ep.tls.ca, ep.tls.cert, ep.tls.key, ep.tls.servername])).digest('hex') : ''
  // A different CA or client certificate never reuses a connection made with another.
  const key = ep.socketPath ? `unix:${ep.socketPath}` : `${ep.origin}|${tlsId}`
  let agent = agents.get(key)
  if (!agent) {
    agent = https
      ? new HttpsAgent({
        keepAlive: true, maxSockets: MAX_SOCKETS,
        ...(ep.tls?.ca ? { ca: ep.tls.ca } : {}), ...(ep.tls?.cert ? { cert: ep.tls.cert } : {}),
        ...(ep.tls?.key ? { key: ep.tls.key } : {}), ...(ep.tls?.servername ? { servername: ep.tls.servername } : {}),
      })
      : new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS })
    agents.set(key, agent)
  }
  return agent
}

/**
 * Sends one request and resolves with the answer once its headers are in.
 * Rejects with the transport's error (ECONNREFUSED, ENOENT, a TLS failure…)
 * or, when `signal` fires, with its reason; an abort after the headers
 * destroys the body, whose reading then rejects.
 */
export function sendHttp(ep: HttpEndpoint, req: HttpRequest, signal: AbortSignal): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    if (signal.aborted) { reject(signal.reason); return }
    const url = new URL(ep.origin)
    const https = url.protocol === 'https:'
    const headers: Record<string, string> = { ...req.headers }
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body))
    const options = {
      method: req.method, path: req.path, headers, agent: agentFor(ep),
      ...(ep.socketPath ? { socketPath: ep.socketPath } : { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (https ? 443 : 80) }),
      ...(ep.socketPath ? { setHost: false } : {}),
      ...(https && ep.tls?.servername ? { servername: ep.tls.servername } : {}),
    }
    if (ep.socketPath) headers.host = 'localhost'
    let answered: IncomingMessage | undefined
    const onAbort = (): void => {
      const reason: unknown = signal.reason
      if (answered) answered.destroy(reason instanceof Error ? reason : new Error(String(reason)))
      // Before the answer, the request's error carries the cause; the promise rejects with the signal's reason.
      r.destroy()
      reject(reason)
    }
    const r = (https ? httpsRequest : httpRequest)(options, (res) => {
      answered = res
      res.once('close', () => signal.removeEventListener('abort', onAbort))
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res })
    })
    r.on('error', (e) => {
      signal.removeEventListener('abort', onAbort)
      reject(signal.aborted ? signal.reason : e)
    })
    signal.addEventListener('abort', onAbort, { once: true })
    r.end(req.body)
  })
}

/** Closes every kept-alive connection (runner shutdown, tests). */
export function closeHttpAgents(): void {
  for (const agent of agents.values()) agent.destroy()
  agents.clear()
}
