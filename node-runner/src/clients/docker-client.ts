/**
 * A small client for the Docker Engine API over its unix socket. Pack paths
 * carry no API version: the daemon's own `ApiVersion` (GET /version) is asked
 * once per socket and every path is prefixed with `/v<version>`, so one pack
 * works against any daemon. Log streams are demultiplexed into stdout and
 * stderr; Docker's JSON error bodies (`{"message": "No such container: …"}`)
 * become an `ApiStatusError`.
 */
import { ApiStatusError, ApiUnreachableError, describeCause, oneLine, readCappedText } from './api-errors.js'
import { closeHttpAgents, sendHttp, type HttpAnswer } from './http-transport.js'
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

/** The daemon's API version, asked once per socket. */
const versions = new Map<string, Promise<string>>()

async function send(socketPath: string, method: string, path: string, body: unknown, signal: AbortSignal): Promise<HttpAnswer> {
  const headers: Record<string, string> = { 'user-agent': 'writ-node-runner' }
  let payload: string | undefined
  if (body !== undefined) {
    payload = JSON.stringify(body)
    headers['content-type'] = 'application/json'
  }
  try {
    return await sendHttp({ origin: 'http://localhost', socketPath }, { method, path, headers, body: payload }, signal)
  } catch (e) {
    if (signal.aborted) throw signal.reason
    const code = (e as { code?: unknown } | null)?.code
    const why = code === 'ECONNREFUSED' || code === 'ENOENT' ? `no Docker daemon at ${socketPath}` : `cannot reach the daemon at ${socketPath}`
    throw new ApiUnreachableError('docker', `${why}: ${describeCause(e)}`, { cause: e })
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
  let known = versions.get(socketPath)
  if (!known) {
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
    known = lookup
    versions.set(socketPath, lookup)
    lookup.catch(() => { if (versions.get(socketPath) === lookup) versions.delete(socketPath) })
  }
  return known
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

/** Closes every kept-alive connection and forgets the versions (runner shutdown, tests). */
export function closeDockerClients(): void {
  versions.clear()
  closeHttpAgents()
}
