/**
 * The hash chain both daemons keep: the control plane's audit events and each
 * runner's journal. An entry holds its sequence and the hash of the entry
 * before it; its own hash is the SHA-256 of the canonical JSON of everything
 * but the hash. Pure, so verifying a stream, an export or a journal is the
 * same code.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from './canonical-json.js'

/** What the first entry of a chain links to. */
export const GENESIS_HASH = '0'.repeat(64)

export interface ChainLink { seq: number, prev: string, hash: string }

/** SHA-256 (hex) of the canonical JSON of an entry without its `hash`. */
export function chainHash(unsealed: object): string {
  return createHash('sha256').update(canonicalJson(unsealed)).digest('hex')
}

/** The entry with its hash. */
export function sealLink<T extends { seq: number, prev: string }>(unsealed: T): T & { hash: string } {
  return { ...unsealed, hash: chainHash(unsealed) }
}

export type LinkCheck =
  | { ok: true }
  | { ok: false, code: 'edited' | 'gap' | 'broken_link', message: string }

/**
 * Checks one entry against its own hash and, when given, the entry before it.
 * `noun` names entries in messages ("event", "journal entry").
 */
export function checkLink(entry: ChainLink, previous: { seq: number, hash: string } | undefined, noun = 'entry'): LinkCheck {
  const { hash, ...unsealed } = entry as ChainLink & Record<string, unknown>
  if (chainHash(unsealed) !== hash) return { ok: false, code: 'edited', message: `content does not match its hash (the ${noun} was edited)` }
  if (!previous) return { ok: true }
  if (entry.seq !== previous.seq + 1) {
    return { ok: false, code: 'gap', message: `sequence jumps from ${previous.seq} to ${entry.seq}: ${entry.seq - previous.seq - 1} ${noun}(s) missing` }
  }
  if (entry.prev !== previous.hash) {
    return { ok: false, code: 'broken_link', message: `prev hash does not match the hash of ${noun} ${previous.seq} (dropped, reordered or forked chain)` }
  }
  return { ok: true }
}
