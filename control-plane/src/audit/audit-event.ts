/**
 * Audit events and the hash chain over them. Each event holds the hash of the
 * one before it; the hash covers the canonical JSON of everything but itself.
 * Verification is pure so the CLI can check the stream or an exported file.
 */
import { z } from 'zod'
import { GENESIS_HASH, chainHash, checkLink } from '@writ/packs'

export { GENESIS_HASH }

export const AuditActorSchema = z.object({ id: z.string(), kind: z.enum(['agent', 'operator', 'system']) }).strict()

/** The control plane acting for itself (sweeps, dispatch outcomes, its own reads): the actor of the events no person or agent caused. */
export const CONTROL_PLANE_ACTOR = { id: 'control-plane', kind: 'system' } as const

export const AuditEventSchema = z.object({
  v: z.literal(1),
  /** The stream sequence this event was appended at. */
  seq: z.number().int().positive(),
  at: z.string(),
  type: z.string().regex(/^[a-z_]+(\.[a-z_]+)+$/),
  actor: AuditActorSchema.nullable(),
  instance: z.string(),
  run_id: z.string().optional(),
  node: z.string().optional(),
  action: z.string().optional(),
  data: z.record(z.string(), z.unknown()),
  prev: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
}).strict()
export type AuditEvent = z.infer<typeof AuditEventSchema>
export type AuditEventBody = Omit<AuditEvent, 'v' | 'seq' | 'prev' | 'hash' | 'instance' | 'at'>

export function hashEvent(event: Omit<AuditEvent, 'hash'>): string {
  return chainHash(event)
}

export function sealEvent(body: AuditEventBody, meta: { seq: number, prev: string, at: string, instance: string }): AuditEvent {
  const unsealed = { ...body, ...meta, v: 1 as const }
  return { ...unsealed, hash: hashEvent(unsealed) }
}

/** One stored event as read back: raw text, and the stream sequence when known. */
export interface StoredEvent { text: string, streamSeq?: number }

export type ChainVerdict =
  | { ok: true, events: number, firstSeq: number | null, lastSeq: number | null, lastHash: string }
  | { ok: false, events: number, bad: { position: number, seq: number | null, reason: string } }

/**
 * Walks the chain (links only; `verifyAudit` adds checkpoints and witnesses).
 * An event at sequence 1 must link to the genesis hash; `anchored` (default)
 * also demands the chain start there — a stream whose oldest events aged out
 * passes `false`.
 */
export async function verifyChain(
  events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>,
  opts: { anchored?: boolean, /** Sees each event once it is linked; returning false stops the walk as broken. */ onEvent?: (e: AuditEvent) => boolean } = {},
): Promise<ChainVerdict> {
  let prev: AuditEvent | undefined
  let count = 0
  let firstSeq: number | null = null
  for await (const stored of events) {
    count++
    const position = count
    const fail = (seq: number | null, reason: string): ChainVerdict => ({ ok: false, events: count, bad: { position, seq, reason } })
    let json: unknown
    try { json = JSON.parse(stored.text) } catch {
      return fail(stored.streamSeq ?? (prev ? prev.seq + 1 : null), 'event is not valid JSON')
    }
    const parsed = AuditEventSchema.safeParse(json)
    if (!parsed.success) {
      const seq = typeof (json as { seq?: unknown })?.seq === 'number' ? (json as { seq: number }).seq : stored.streamSeq ?? null
      return fail(seq, `event does not match the audit schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
    }
    const e = parsed.data
    const own = checkLink(e, undefined, 'event')
    if (!own.ok) return fail(e.seq, own.message)
    if (stored.streamSeq !== undefined && stored.streamSeq !== e.seq) {
      return fail(e.seq, `event claims sequence ${e.seq} but is stored at ${stored.streamSeq}`)
    }
    if (prev) {
      const link = checkLink(e, prev, 'event')
      if (!link.ok) return fail(e.seq, link.message)
    } else {
      firstSeq = e.seq
      if (e.seq === 1 && e.prev !== GENESIS_HASH) return fail(e.seq, 'first event does not link to the genesis hash')
      if ((opts.anchored ?? true) && e.seq !== 1) return fail(e.seq, `chain starts at sequence ${e.seq}, not 1: earlier events are missing`)
    }
    if (opts.onEvent && !opts.onEvent(e)) return fail(e.seq, 'refused by the verifier')
    prev = e
  }
  return { ok: true, events: count, firstSeq, lastSeq: prev?.seq ?? null, lastHash: prev?.hash ?? GENESIS_HASH }
}

/** Splits JSON-lines text into stored events (blank lines skipped). */
export function eventsFromJsonLines(text: string): StoredEvent[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => ({ text: l }))
}
