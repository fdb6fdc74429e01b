/**
 * Fresh ids and random hex for runs, plans and nonces: time-ordered run ids
 * that are also NATS subject tokens, drawn from a pooled CSPRNG.
 */
import { randomBytes } from 'node:crypto'

/** A time-ordered run id that is also a NATS subject token. */
export function newRunId(): string {
  return `r${Date.now().toString(36).padStart(9, '0')}${randomHex(8)}`
}

/**
 * `bytes` fresh CSPRNG bytes as hex, drawn from a 4 KiB pool: one
 * `randomBytes` call per few hundred ids and nonces instead of one each.
 * Every byte is handed out once.
 */
export function randomHex(bytes: number): string {
  if (entropyAt + bytes > entropy.length) { entropy = randomBytes(4096); entropyAt = 0 }
  const hex = entropy.toString('hex', entropyAt, entropyAt + bytes)
  entropyAt += bytes
  return hex
}
let entropy = Buffer.alloc(0)
let entropyAt = 0
