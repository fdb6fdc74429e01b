/**
 * Signed checkpoints anchor the audit chain: someone who can rewrite the
 * whole stream can recompute every hash, but not sign. A checkpoint is an
 * ordinary chain event (`audit.checkpoint`), appended like any other with
 * expected-last-sequence, whose Ed25519 signature covers the position it
 * takes: the sequence and hash of the event right before it, and the time.
 * Control planes append one every few seconds while events flow, at start
 * when the tail is not covered (a crash), and at shutdown.
 */
import { sign } from 'node:crypto'
import type { Logger } from 'pino'
import { z } from 'zod'
import { canonicalJson } from '@writ/packs'
import { verifySignature, type SigningKey, type TrustedKey } from '@writ/packs/protocol'
import type { AuditChain } from './audit-chain.js'
import { type AuditEvent, CONTROL_PLANE_ACTOR } from './audit-event.js'
import { AUDIT_STREAM } from '../nats/index.js'

export const CHECKPOINT_TYPE = 'audit.checkpoint'

/** What a checkpoint's signature covers. */
export interface CheckpointStatement { kind: 'writ.audit.checkpoint', stream: string, seq: number, head: string, at: string }

export const CheckpointDataSchema = z.object({
  /** The last event this checkpoint vouches for (the one right before it). */
  covers_seq: z.number().int().nonnegative(),
  /** That event's hash. */
  head: z.string().regex(/^[0-9a-f]{64}$/),
  signed_at: z.string(),
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  sig: z.string().min(1),
}).strict()
export type CheckpointData = z.infer<typeof CheckpointDataSchema>

function statement(seq: number, head: string, at: string): CheckpointStatement {
  return { kind: 'writ.audit.checkpoint', stream: AUDIT_STREAM, seq, head, at }
}

export type CheckpointCheck = { ok: true, data: CheckpointData } | { ok: false, reason: string }

/** Checks a checkpoint event: well formed, about the event right before it, signed by a trusted key. */
export function checkCheckpoint(event: AuditEvent, trusted: readonly TrustedKey[]): CheckpointCheck {
  const parsed = CheckpointDataSchema.safeParse(event.data)
  if (!parsed.success) return { ok: false, reason: `checkpoint is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
  const d = parsed.data
  if (d.covers_seq !== event.seq - 1 || d.head !== event.prev) {
    return { ok: false, reason: `checkpoint signs sequence ${d.covers_seq} with head ${d.head.slice(0, 16)}…, but the event before it is ${event.seq - 1} with hash ${event.prev.slice(0, 16)}… (moved or recomputed)` }
  }
  const sig = verifySignature(statement(d.covers_seq, d.head, d.signed_at), d.key_id, d.sig, trusted)
  if (!sig.ok) {
    return { ok: false, reason: sig.code === 'unknown_key' ? `checkpoint is signed by key ${d.key_id}, which is not among the trusted keys` : 'checkpoint signature does not verify (the chain before it was rewritten)' }
  }
  return { ok: true, data: d }
}

/** Appends checkpoints for one control-plane instance. */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private stopped = false
  written = 0
  /**
   * Unix ms when this instance last found every event on the chain (any
   * instance's) covered by a signed checkpoint: the newest stored event was
   * one, or it appended one. The start time until the first look, so an
   * instance that can never checkpoint is as stale as one that stopped.
   */
  coveredAt: number
  private tailUnreadable = false

  constructor(private readonly chain: AuditChain, private readonly key: SigningKey, private readonly intervalMs: number, private readonly log: Logger, private readonly now: () => number = Date.now) {
    this.coveredAt = now()
  }

  /** Checkpoints at once if the tail is uncovered, then every interval while new events arrive. */
  start(): void {
    const tick = (): void => {
      if (this.stopped) return
      this.running = this.checkpointIfNeeded()
        .catch((err: unknown) => this.log.warn({ err }, 'audit checkpoint failed; retrying at the next interval'))
        .finally(() => { if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs) })
    }
    tick()
  }

  /**
   * Appends a checkpoint unless the newest event already is one (so idle
   * replicas do not checkpoint each other's checkpoints forever).
   */
  async checkpointIfNeeded(): Promise<AuditEvent | undefined> {
    const lookedAt = this.now()
    const last = await this.chain.lastEvent()
    if (last.empty || last.event?.type === CHECKPOINT_TYPE) {
      this.coveredAt = lookedAt
      return undefined
    }
    // A newest event that does not parse is not vouched for here: verify reports it.
    if (!last.event) {
      if (!this.tailUnreadable) this.log.warn('the newest audit event does not parse (written by something other than a control plane?); not checkpointing over it')
      this.tailUnreadable = true
      return undefined
    }
    this.tailUnreadable = false
    return this.checkpoint()
  }

  /** Appends a checkpoint covering whatever precedes it when it lands. */
  async checkpoint(): Promise<AuditEvent> {
    const event = await this.chain.append((at) => {
      const signedAt = new Date().toISOString()
      const sig = sign(null, Buffer.from(canonicalJson(statement(at.seq - 1, at.prev, signedAt))), this.key.privateKey).toString('base64')
      const data: CheckpointData = { covers_seq: at.seq - 1, head: at.prev, signed_at: signedAt, key_id: this.key.keyId, sig }
      return { type: CHECKPOINT_TYPE, actor: CONTROL_PLANE_ACTOR, data }
    })
    this.written++
    this.coveredAt = this.now()
    return event
  }

  /** Stops the timer and leaves the tail covered. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    await this.running
    try { await this.checkpointIfNeeded() } catch (err) { this.log.warn({ err }, 'final audit checkpoint failed') }
  }
}
