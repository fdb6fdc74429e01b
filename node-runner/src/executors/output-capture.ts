/**
 * Collects one output stream up to a byte cap while hashing everything that
 * was produced, so a result can prove what the full output was.
 */
import { createHash } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'

export class OutputCapture {
  private readonly chunks: Buffer[] = []
  private kept = 0
  private readonly hash = createHash('sha256')
  private readonly decoder = new StringDecoder('utf8')
  total = 0
  truncated = false

  constructor(private readonly cap: number, private readonly onText?: (text: string) => void) {}

  push(chunk: Buffer): void {
    this.total += chunk.length
    this.hash.update(chunk)
    if (this.kept >= this.cap) { this.truncated = true; return }
    const room = this.cap - this.kept
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk
    if (chunk.length > room) this.truncated = true
    this.chunks.push(part)
    this.kept += part.length
    if (this.onText) {
      const text = this.decoder.write(part)
      if (text) this.onText(text)
    }
  }

  /** The kept text; a truncated capture ends with a marker saying how much was cut. */
  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8')
    return this.truncated ? `${s}\n[writ: output truncated at ${this.cap} bytes of ${this.total}]` : s
  }

  sha256(): string { return this.hash.digest('hex') }
}
