/**
 * A small client for the Docker Engine API over its unix socket. Pack paths
 * carry no API version: the daemon's own `ApiVersion` (GET /version) is asked
 * once per socket and every path is prefixed with `/v<version>`, so one pack
 * works against any daemon. Log streams are demultiplexed into stdout and
 * stderr; Docker's JSON error bodies (`{"message": "No such container: …"}`)
 * become an `ApiStatusError`.
 */
import { Pool, type Dispatcher } from 'undici'
import { ApiStatusError, ApiUnreachableError, describeCause, oneLine, readCappedText } from './api-errors.js'
import { DockerStreamDemuxer, framingFromContentType, type DemuxSinks } from './docker-stream-demuxer.js'

export interface DockerCall {
  method: string
  /** Unversioned path with query string, e.g. `/containers/json?all=true`. */
  path: string
  body?: unknown
  stream: 'json' | 'text' | 'docker-multiplexed'
}

/** Rejected when the daemon's answer cannot be used at all (e.g. a broken log stream). */
export class DockerStreamError extends Error {
  constructor(detail: string) { super(`docker: ${detail}`); this.name = 'DockerStreamError' }
}

const API_VERSION_RE = /^[0-9]{1,2}\.[0-9]{1,3}$/

interface SocketState { pool: Pool, version?: Promise<string> }
const sockets = new Map<string, SocketState>()

function stateFor(socketPath: string): SocketState {
  let s = sockets.get(socketPath)
  if (!s) {
    s = { pool: new Pool('http://localhost', { socketPath, connections: 4 }) }
    sockets.set(socketPath, s)
  }
  return s
}

async function send(socketPath: string, method: string, path: string, body: unknown, signal: AbortSignal) {
  const headers: Record<string, string> = { 'user-agent': 'writ-node-runner' }
  let payload: string | undefined
  if (body !== undefined) {
    payload = JSON.stringify(body)
    headers['content-type'] = 'application/json'
  }
  try {
    return await stateFor(socketPath).pool.request({ method: method as Dispatcher.HttpMethod, path, headers, ...(payload !== undefined ? { body: payload } : {}), signal })
  } catch (e) {
    if (signal.aborted) throw signal.reason
    throw new ApiUnreachableError('docker', `cannot reach the daemon at ${socketPath}: ${describeCause(e)}`, { cause: e })
  }
}

/** Reads an error answer: Docker sends `{"message": "..."}`; anything else is shown as text. */
async function statusError(statusCode: number, body: AsyncIterable<Buffer>): Promise<ApiStatusError> {
  const text = await readCappedText(body)
  let detail = text
  try {
    const parsed = JSON.parse(text) as { message?: unknown }
    if (typeof parsed.message === 'string') detail = parsed.message
  } catch { /* not JSON: keep the text */ }
  return new ApiStatusError('docker', statusCode, oneLine(detail))
}

/**
 * The daemon's API version, asked once per socket. A failed lookup is not
 * cached, so the next call asks again.
 */
export function dockerApiVersion(socketPath: string, signal: AbortSignal): Promise<string> {
  const state = stateFor(socketPath)
  if (!state.version) {
    const lookup = (async () => {
      const res = await send(socketPath, 'GET', '/version', undefined, signal)
      if (res.statusCode >= 400) throw await statusError(res.statusCode, res.body)
      const text = await readCappedText(res.body, 64 * 1024)
      let version: unknown
      try { version = (JSON.parse(text) as { ApiVersion?: unknown }).ApiVersion } catch { version = undefined }
      if (typeof version !== 'string' || !API_VERSION_RE.test(version)) {
        throw new DockerStreamError(`GET /version did not name an ApiVersion (got ${oneLine(String(version), 40)})`)
      }
      return version
    })()
    state.version = lookup
    lookup.catch(() => { if (state.version === lookup) delete state.version })
  }
  return state.version
}

/**
 * Performs one call against the versioned path. For `docker-multiplexed`
 * bodies the frames are split into `sinks.stdout` / `sinks.stderr`; every
 * other body goes to `sinks.stdout` as it arrives.
 */
export async function callDocker(socketPath: string, call: DockerCall, sinks: DemuxSinks, signal: AbortSignal): Promise<void> {
  const version = await dockerApiVersion(socketPath, signal)
  const res = await send(socketPath, call.method, `/v${version}${call.path}`, call.body, signal)
  try {
    if (res.statusCode >= 400) throw await statusError(res.statusCode, res.body)
    if (call.stream !== 'docker-multiplexed') {
      for await (const chunk of res.body) sinks.stdout(chunk as Buffer)
      return
    }
    const contentType = res.headers['content-type']
    const demuxer = new DockerStreamDemuxer(framingFromContentType(Array.isArray(contentType) ? contentType[0] : contentType), sinks)
    for await (const chunk of res.body) demuxer.push(chunk as Buffer)
    const { problem } = demuxer.end()
    if (problem !== undefined) throw new DockerStreamError(problem)
  } catch (e) {
    res.body.destroy()
    if (e instanceof ApiStatusError || e instanceof DockerStreamError) throw e
    if (signal.aborted) throw signal.reason
    throw new ApiUnreachableError('docker', `answer from ${socketPath} broke off: ${describeCause(e)}`, { cause: e })
  }
}

/** Closes every socket's connections and forgets the versions (runner shutdown, tests). */
export async function closeDockerClients(): Promise<void> {
  const all = [...sockets.values()]
  sockets.clear()
  await Promise.all(all.map((s) => s.pool.close().catch(() => undefined)))
}
