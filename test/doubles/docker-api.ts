/**
 * A stand-in Docker Engine (API v1.24, as in the published samples) listening
 * on a unix socket in a temporary directory. It serves ../shared/fixtures/docker
 * in place and speaks the real log wire format: multiplexed frames built from
 * the published stream capture, plus one stderr frame. Every request is
 * recorded.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FIXTURES_DIR } from './fixtures-dir.js'

const DOCKER_FIXTURES = join(FIXTURES_DIR, 'docker')

export interface RecordedDockerRequest {
  method: string
  path: string
  query: Record<string, string>
  headers: IncomingHttpHeaders
}

export interface DockerDoubleOptions {
  /** Write the log body in small uneven pieces with pauses, so frames and headers straddle TCP chunks. */
  splitWrites?: boolean
  /** Answer logs as a container with a TTY would: the raw text, no frames. */
  tty?: boolean
  /** Label log bodies with Content-Type, as Engine API ≥ 1.42 does (v1.24 sends none). */
  labelStreams?: boolean
  /** Containers served beside the fixture's, each with its own log (a scenario's plugin container). */
  extraContainers?: ExtraContainer[]
}

export interface ExtraContainer { Id: string, Names: string[], Image: string, State: string, logFrames: LogFrame[] }

export interface LogFrame { stream: 0 | 1 | 2 | 3, payload: Buffer }

export interface DockerDouble {
  socketPath: string
  requests: RecordedDockerRequest[]
  /** The API version the daemon reports (from GET_version.v1.24.json). */
  apiVersion: string
  /** Containers from the list fixture. */
  containers: Array<{ Id: string, Names: string[], State: string }>
  /** The frames a logs request returns (before `tail`), in order. */
  logFrames: LogFrame[]
  close(): Promise<void>
}

/**
 * The published capture prints each frame as one JSON-escaped line after a
 * leading blank. Each line is unescaped, split into its 8-byte header and
 * payload, and the frame is rebuilt with the payload's true length: frame 1's
 * header declares 79 bytes but its payload as published is 80 (an extra "\n"),
 * and a frame must never lie about its size.
 */
export function framesFromCapture(): LogFrame[] {
  const lines = readFileSync(join(DOCKER_FIXTURES, 'logs_multiplexed_stream_escaped.dappnode-pr336.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '')
  return lines.map((line) => {
    const raw = JSON.parse(`"${line.slice(1)}"`) as string
    const bytes = Buffer.from(raw, 'utf8')
    const stream = bytes[0]
    if (stream !== 1 && stream !== 2) throw new Error(`capture line does not start with a stdout/stderr frame header: ${line.slice(0, 40)}`)
    return { stream, payload: bytes.subarray(8) }
  })
}

/** One stderr line of our own, so the demultiplexer has two streams to separate. */
const STDERR_FRAME: LogFrame = { stream: 2, payload: Buffer.from('warn: cache DB write took 2300ms (disk slow?)\n') }

/** Encodes frames as the Engine sends them: `[stream,0,0,0,size BE u32]` + payload. */
export function encodeFrames(frames: readonly LogFrame[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => {
    const header = Buffer.alloc(8)
    header[0] = f.stream
    header.writeUInt32BE(f.payload.length, 4)
    return [header, f.payload]
  }))
}

/** The timestamp the double puts in front of frame `i` when `timestamps=1`. */
export function frameTimestamp(i: number): string {
  return `2019-11-14T10:00:${String(i).padStart(2, '0')}.000000000Z`
}

/** Frames as a logs request with these parameters returns them. */
export function selectFrames(all: readonly LogFrame[], query: Record<string, string>): LogFrame[] {
  const wantOut = isTrue(query.stdout)
  const wantErr = isTrue(query.stderr)
  const stamped = all.map((f, i) => (isTrue(query.timestamps) ? { stream: f.stream, payload: Buffer.concat([Buffer.from(`${frameTimestamp(i)} `), f.payload]) } : f))
  const chosen = stamped.filter((f) => (f.stream === 1 ? wantOut : wantErr))
  const tail = query.tail === undefined || query.tail === 'all' ? chosen.length : Number(query.tail)
  return tail >= chosen.length ? chosen : chosen.slice(chosen.length - tail)
}

/** Docker's boolean query parsing: anything but "", "0", "no", "false", "none" is true. */
function isTrue(v: string | undefined): boolean {
  return v !== undefined && !['', '0', 'no', 'false', 'none'].includes(v.toLowerCase())
}

/** Starts the double on a fresh unix socket. */
export async function startDockerDouble(options: DockerDoubleOptions = {}): Promise<DockerDouble> {
  const version = JSON.parse(readFileSync(join(DOCKER_FIXTURES, 'GET_version.v1.24.json'), 'utf8')) as { ApiVersion: string }
  const listed = JSON.parse(readFileSync(join(DOCKER_FIXTURES, 'GET_containers_json.v1.24.json'), 'utf8')) as Array<Record<string, unknown> & { Id: string, Names: string[], State: string }>
  const extra = options.extraContainers ?? []
  const containers = [...listed, ...extra.map(({ logFrames: _frames, ...c }) => c)]
  const logFrames = [...framesFromCapture(), STDERR_FRAME]
  const dir = mkdtempSync(join(tmpdir(), 'writ-docker-double-'))
  const socketPath = join(dir, 'docker.sock')
  const requests: RecordedDockerRequest[] = []

  const message = (res: ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ message: text }))
  }
  const json = (res: ServerResponse, value: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'api-version': version.ApiVersion })
    res.end(JSON.stringify(value))
  }
  const find = (ref: string) => {
    const byName = containers.find((c) => c.Names.includes(`/${ref}`))
    if (byName) return byName
    const byId = containers.filter((c) => c.Id.startsWith(ref))
    return byId.length === 1 ? byId[0] : undefined
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker.invalid')
    const query = Object.fromEntries(url.searchParams)
    requests.push({ method: req.method ?? '', path: url.pathname, query, headers: req.headers })
    req.resume()
    const m = /^(?:\/v([0-9]+\.[0-9]+))?(\/.*)$/.exec(url.pathname)
    const asked = m?.[1]
    const path = m?.[2] ?? url.pathname
    if (asked !== undefined && Number(asked.split('.')[1]) > Number(version.ApiVersion.split('.')[1])) {
      return message(res, 400, `client version ${asked} is too new. Maximum supported API version is ${version.ApiVersion}`)
    }
    if (req.method !== 'GET') return message(res, 404, 'page not found')
    if (path === '/version') return json(res, JSON.parse(readFileSync(join(DOCKER_FIXTURES, 'GET_version.v1.24.json'), 'utf8')))
    if (path === '/containers/json') return json(res, isTrue(query.all) ? containers : containers.filter((c) => c.State === 'running'))
    const c = /^\/containers\/([^/]+)\/(json|logs)$/.exec(path)
    if (!c) return message(res, 404, 'page not found')
    const ref = decodeURIComponent(c[1] as string)
    const container = find(ref)
    if (!container) return message(res, 404, `No such container: ${ref}`)
    if (c[2] === 'json') return json(res, inspectOf(container, options.tty === true))
    if (!isTrue(query.stdout) && !isTrue(query.stderr)) return message(res, 400, 'Bad parameters: you must choose at least one stream')
    const own = extra.find((e) => e.Id === container.Id)?.logFrames
    void writeLogs(res, selectFrames(own ?? logFrames, query), options)
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  return {
    socketPath, requests, apiVersion: version.ApiVersion, containers, logFrames,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => { rmSync(dir, { recursive: true, force: true }); resolve() })
    }),
  }
}

async function writeLogs(res: ServerResponse, frames: LogFrame[], options: DockerDoubleOptions): Promise<void> {
  const body = options.tty ? Buffer.concat(frames.map((f) => f.payload)) : encodeFrames(frames)
  const headers: Record<string, string> = {}
  if (options.labelStreams) headers['content-type'] = options.tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream'
  res.writeHead(200, headers)
  if (!options.splitWrites) { res.end(body); return }
  // Uneven pieces (3, 5, 7, 11 … bytes) with a pause after each, so headers and payloads straddle chunks.
  const sizes = [3, 5, 7, 11, 2, 13]
  let at = 0
  for (let i = 0; at < body.length; i++) {
    const n = sizes[i % sizes.length] as number
    res.write(body.subarray(at, at + n))
    at += n
    await sleep(1)
  }
  res.end()
}

/**
 * No inspect sample is among the published fixtures, so the inspect answer is
 * assembled from the same container's list entry, in the field names of the
 * Engine's inspect schema. Tests only check it passes through intact.
 */
function inspectOf(c: Record<string, unknown> & { Id: string, Names: string[], State: string }, tty: boolean): Record<string, unknown> {
  const command = String(c.Command ?? '').split(' ')
  return {
    Id: c.Id,
    Created: new Date(Number(c.Created ?? 0) * 1000).toISOString(),
    Path: command[0] ?? '',
    Args: command.slice(1),
    State: { Status: c.State, Running: c.State === 'running', ExitCode: 0 },
    Image: c.ImageID,
    Name: c.Names[0],
    Config: { Image: c.Image, Labels: c.Labels, Tty: tty },
    HostConfig: c.HostConfig,
    Mounts: c.Mounts,
    NetworkSettings: c.NetworkSettings,
  }
}
