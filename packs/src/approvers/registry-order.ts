/**
 * Which approver registry may replace which: a registry is identified by its
 * signed serial, its issue time and its digest, and a daemon never goes back
 * to one older than the newest it accepted — not while it runs, and not after
 * a restart (runners keep the newest in their journal, the control plane in
 * its KV bucket). An old registry written back could otherwise bring back a
 * revoked passkey. A registry past its `expires_at` is refused outright.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from '../canonical-json.js'
import type { ApproverRegistry } from './approver-registry.js'

/** What identifies one registry in time: the serial (0 for one from before serials), when it was issued, its digest. */
export const RegistryMarkSchema = z.object({
  serial: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  issued_at: z.string().datetime({ offset: true }),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  expires_at: z.string().datetime({ offset: true }).optional(),
}).strict()
export type RegistryMark = z.infer<typeof RegistryMarkSchema>

/**
 * The newest registry a daemon accepted, as it keeps it across restarts: its
 * mark and, where it fits, the signed registry itself — verified again at
 * start — so a restarted daemon keeps it in force when the file on disk was
 * rolled back.
 */
export const AcceptedRegistrySchema = RegistryMarkSchema.extend({
  /** The signed registry exactly as published (verified again before use; parsing must not add defaults the signature does not cover). */
  signed: z.record(z.string(), z.unknown()).optional(),
}).strict()
export type AcceptedRegistry = z.infer<typeof AcceptedRegistrySchema>

/** SHA-256 of the registry's canonical JSON (after parsing): what heartbeats report and the Nodes page compares. */
export function registryDigest(registry: ApproverRegistry): string {
  return createHash('sha256').update(canonicalJson(registry)).digest('hex')
}

export function markOf(registry: ApproverRegistry): RegistryMark {
  return {
    serial: registry.serial ?? 0, issued_at: registry.issued_at, digest: registryDigest(registry),
    ...(registry.expires_at !== undefined ? { expires_at: registry.expires_at } : {}),
  }
}

/** "serial 4 (issued …)", for messages. */
export function describeMark(m: RegistryMark): string {
  return `${m.serial > 0 ? `serial ${m.serial}` : 'no serial'} (issued ${m.issued_at}, digest ${m.digest.slice(0, 12)}…)`
}

/** Whether `a` is newer than `b` (a higher serial, or the same serial 0 issued later). */
export function isNewer(a: RegistryMark, b: RegistryMark): boolean {
  if (a.serial !== b.serial) return a.serial > b.serial
  return a.digest !== b.digest && Date.parse(a.issued_at) > Date.parse(b.issued_at)
}

/**
 * Why `next` may not replace `floor` (the newest registry accepted so far),
 * or undefined when it may: the same registry again, or a newer one — a
 * higher serial, issued no earlier. Two different registries with one serial
 * are refused (a serial names one registry); registries from before serials
 * are ordered by issue time alone.
 */
export function rollbackReason(next: RegistryMark, floor: RegistryMark): string | undefined {
  if (next.digest === floor.digest) return undefined
  if (next.serial < floor.serial) {
    return `it is ${describeMark(next)}, older than ${describeMark(floor)} already accepted; an old registry could bring back a revoked passkey`
  }
  if (next.serial === floor.serial && next.serial > 0) {
    return `it is ${describeMark(next)}, but serial ${floor.serial} already names another registry (digest ${floor.digest.slice(0, 12)}…); publish a new one with writ approvers export`
  }
  if (Date.parse(next.issued_at) < Date.parse(floor.issued_at)) {
    return `it was issued ${next.issued_at}, before the one in force (${describeMark(floor)}); an old registry could bring back a revoked passkey`
  }
  return undefined
}

/** Why the registry is no longer valid at `now`, or undefined. */
export function expiryReason(registry: Pick<ApproverRegistry, 'expires_at'>, now: number): string | undefined {
  if (registry.expires_at === undefined || Date.parse(registry.expires_at) > now) return undefined
  return `it expired at ${registry.expires_at}; an administrator has to publish a new one (writ approvers export)`
}
