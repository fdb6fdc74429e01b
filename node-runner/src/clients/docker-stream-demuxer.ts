/**
 * Splits a Docker Engine log/attach stream back into stdout and stderr.
 *
 * Without a TTY the Engine multiplexes both streams into frames: an 8-byte
 * header `[stream, 0, 0, 0, size as big-endian uint32]` followed by `size`
 * payload bytes (stream 0 = stdin, written to stdout; 1 = stdout; 2 = stderr;
 * 3 = an error from the daemon itself). With a TTY the body is the raw
 * terminal output and is not framed at all. Frames arrive split across TCP
 * chunks in any way, so the header is reassembled and payload bytes are
 * forwarded as they come, never waiting for a whole frame.
 */

/** How the body is framed: decided by the response's Content-Type, or by sniffing when it has none. */
export type DockerStreamFraming = 'multiplexed' | 'raw' | 'sniff'

export interface DemuxSinks {
  stdout: (chunk: Buffer) => void
  stderr: (chunk: Buffer) => void
}

export interface DemuxResult {
  framing: 'multiplexed' | 'raw'
  /** Set when the stream was not well-formed or the daemon sent an error frame. */
  problem?: string
}

const HEADER_BYTES = 8
const STREAM_STDIN = 0
const STREAM_STDOUT = 1
const STREAM_STDERR = 2
const STREAM_SYSTEM_ERROR = 3
/** How much of a daemon error frame is kept for the error message. */
const SYSTEM_ERROR_KEEP = 1024

/**
 * Content-Type → framing. Engine API ≥ 1.42 labels the body; older daemons
 * send no Content-Type on logs, so the first bytes must decide.
 */
export function framingFromContentType(contentType: string | undefined): DockerStreamFraming {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase()
  if (ct === 'application/vnd.docker.multiplexed-stream') return 'multiplexed'
  if (ct === 'application/vnd.docker.raw-stream') return 'raw'
  return 'sniff'
}

export class DockerStreamDemuxer {
  private framing: DockerStreamFraming
  private header = Buffer.alloc(HEADER_BYTES)
  private headerFill = 0
  private stream = STREAM_STDOUT
  private remaining = 0
  private sniffed: Buffer[] = []
  private sniffedBytes = 0
  private systemError: Buffer[] = []
  private problem: string | undefined

  constructor(framing: DockerStreamFraming, private readonly sinks: DemuxSinks) {
    this.framing = framing
  }

  push(chunk: Buffer): void {
    if (this.problem !== undefined && this.framing === 'multiplexed') return
    if (this.framing === 'sniff') {
      this.sniffed.push(chunk)
      this.sniffedBytes += chunk.length
      if (this.sniffedBytes < 4) return
      const head = Buffer.concat(this.sniffed)
      this.sniffed = []
      this.framing = looksMultiplexed(head) ? 'multiplexed' : 'raw'
      chunk = head
    }
    if (this.framing === 'raw') { this.sinks.stdout(chunk); return }
    this.pushFramed(chunk)
  }

  /** Call once the body has ended; reports a frame cut short or a daemon error. */
  end(): DemuxResult {
    if (this.framing === 'sniff') {
      // Fewer than 4 bytes in total: too short to be a frame, so it is raw output.
      const head = Buffer.concat(this.sniffed)
      this.framing = 'raw'
      if (head.length > 0) this.sinks.stdout(head)
    }
    if (this.framing === 'multiplexed' && this.problem === undefined) {
      if (this.headerFill > 0) this.problem = `stream ended inside a frame header (${this.headerFill} of ${HEADER_BYTES} bytes)`
      else if (this.remaining > 0) this.problem = `stream ended inside a frame (${this.remaining} payload bytes missing)`
    }
    if (this.systemError.length > 0 && this.problem === undefined) {
      this.problem = `daemon error in stream: ${Buffer.concat(this.systemError).toString('utf8').trim()}`
    }
    return { framing: this.framing as 'multiplexed' | 'raw', ...(this.problem !== undefined ? { problem: this.problem } : {}) }
  }

  private pushFramed(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at)
        chunk.copy(this.header, this.headerFill, at, at + take)
        this.headerFill += take
        at += take
        if (this.headerFill < HEADER_BYTES) return
        this.headerFill = 0
        const type = this.header[0] as number
        if (type > STREAM_SYSTEM_ERROR || this.header[1] !== 0 || this.header[2] !== 0 || this.header[3] !== 0) {
          this.problem = `not a multiplexed stream: bad frame header ${this.header.toString('hex')}`
          return
        }
        this.stream = type
        this.remaining = this.header.readUInt32BE(4)
        continue
      }
      const take = Math.min(this.remaining, chunk.length - at)
      this.deliver(chunk.subarray(at, at + take))
      this.remaining -= take
      at += take
    }
  }

  private deliver(payload: Buffer): void {
    switch (this.stream) {
      case STREAM_STDIN:
      case STREAM_STDOUT: this.sinks.stdout(payload); break
      case STREAM_STDERR: this.sinks.stderr(payload); break
      default: {
        // The daemon's own error (e.g. the log driver failed mid-read): shown on stderr and reported.
        this.sinks.stderr(payload)
        const kept = this.systemError.reduce((n, b) => n + b.length, 0)
        if (kept < SYSTEM_ERROR_KEEP) this.systemError.push(payload.subarray(0, SYSTEM_ERROR_KEEP - kept))
      }
    }
  }
}

/** A frame header starts with a stream id 0–3 and three zero bytes; terminal text practically never does. */
function looksMultiplexed(head: Buffer): boolean {
  return (head[0] as number) <= STREAM_SYSTEM_ERROR && head[1] === 0 && head[2] === 0 && head[3] === 0
}
