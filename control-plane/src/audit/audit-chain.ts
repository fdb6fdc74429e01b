/**
 * Appends to the `WRIT_AUDIT` stream so that replicas write one chain: every
 * append states the sequence it expects to follow (expected-last-sequence);
 * a conflict means another instance appended first, so re-read the tail,
 * re-link and try again. Appends from this instance are serialized in a queue.
 */
import { headers, type NatsConnection } from '@nats-io/transport-node'
import { jetstream, jetstreamManager, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import type { Logger } from 'pino'
import { AUDIT_STREAM, AUDIT_SUBJECT, retryTransient } from '../nats/index.js'
import { AuditEventSchema, GENESIS_HASH, sealEvent, type AuditEvent, type AuditEventBody, type StoredEvent } from './audit-event.js'

const WRONG_LAST_SEQUENCE = 10071
const MAX_PIPELINE = 256

export class AuditAppendError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'AuditAppendError' }
}

/** Where an event lands; a body that depends on it (a checkpoint signs its own position) is made from it. */
export interface ChainPosition { seq: number, prev: string, at: string }
export type AuditBodySource = AuditEventBody | ((at: ChainPosition) => AuditEventBody)

interface Pending { body: AuditBodySource, resolve: (e: AuditEvent) => void, reject: (err: Error) => void }

function seal(source: AuditBodySource, meta: ChainPosition & { instance: string }): AuditEvent {
  return sealEvent(typeof source === 'function' ? source(meta) : source, meta)
}

export class AuditChain {
  private readonly js: JetStreamClient
  private tail: { seq: number, hash: string } | undefined
  private readonly queue: Pending[] = []
  private pumping = false
  private pipelined = false
  private readonly followers = new Set<(e: AuditEvent) => void>()
  private feed: { ready: Promise<void>, stop(): void } | undefined
  appended = 0
  conflicts = 0

  private constructor(private readonly nc: NatsConnection, private readonly jsm: JetStreamManager, private readonly instance: string, private readonly log: Logger) {
    this.js = jetstream(nc)
  }

  static async open(nc: NatsConnection, instance: string, log: Logger): Promise<AuditChain> {
    return new AuditChain(nc, await jetstreamManager(nc), instance, log)
  }

  /**
   * Appends one event; resolves with it sealed (sequence, prev, hash) once
   * stored. A function body is called with the position the event takes,
   * again if a conflict moves it.
   */
  append(body: AuditBodySource): Promise<AuditEvent> {
    return new Promise((resolve, reject) => {
      this.queue.push({ body, resolve, reject })
      if (!this.pumping) void this.pump()
    })
  }

  private async pump(): Promise<void> {
    this.pumping = true
    try {
      while (this.queue.length > 0) {
        // Anchor: one append checked by sequence alone, after a start or a conflict.
        if (!this.pipelined) {
          const next = this.queue.shift() as Pending
          try {
            next.resolve(await this.appendOne(next.body))
            this.pipelined = true
          } catch (err) { next.reject(err as Error) }
          continue
        }
        await this.appendPipelined(this.queue.splice(0, MAX_PIPELINE))
      }
    } finally { this.pumping = false }
  }

  /**
   * Publishes a run of events without waiting between them. Each expects both
   * the previous sequence and the previous event's hash as the last message id,
   * so an event can only land right after its predecessor: if one fails, every
   * later one fails too, and the chain never forks. For the same reason only
   * the last event of the run asks for an acknowledgement: it landing where
   * expected proves every event before it landed. When it does not, the
   * stored events are read back from the anchor to find the prefix that
   * landed. Whatever did not land goes back to the front of the queue,
   * re-linked to the tail as it is then.
   */
  private async appendPipelined(batch: Pending[]): Promise<void> {
    const anchor = this.tail as { seq: number, hash: string }
    let tail = anchor
    const at = new Date().toISOString()
    const sealed = batch.map((p) => {
      const event = seal(p.body, { seq: tail.seq + 1, prev: tail.hash, at, instance: this.instance })
      const expect = { lastSequence: tail.seq, lastMsgID: tail.hash }
      tail = { seq: event.seq, hash: event.hash }
      return { p, event, expect }
    })
    const last = sealed[sealed.length - 1] as (typeof sealed)[number]
    for (const x of sealed) {
      if (x === last) break
      const h = headers()
      h.set('Nats-Msg-Id', x.event.hash)
      h.set('Nats-Expected-Last-Sequence', String(x.expect.lastSequence))
      h.set('Nats-Expected-Last-Msg-Id', x.expect.lastMsgID)
      this.nc.publish(AUDIT_SUBJECT, JSON.stringify(x.event), { headers: h })
    }
    let landed = -1
    let failure: unknown
    try {
      const ack = await this.js.publish(AUDIT_SUBJECT, JSON.stringify(last.event), { expect: last.expect, msgID: last.event.hash })
      if (!ack.duplicate && ack.seq === last.event.seq) landed = sealed.length - 1
    } catch (err) { failure = err }
    if (landed < 0) {
      if ((failure as { code?: number } | undefined)?.code === WRONG_LAST_SEQUENCE) this.conflicts++
      try { landed = await this.landedPrefix(sealed.map((x) => x.event)) } catch (err) {
        // Cannot tell what landed: fail these appends rather than risk recording one twice.
        for (const x of sealed) x.p.reject(new AuditAppendError(`cannot confirm ${x.event.type} in ${AUDIT_STREAM}`, { cause: err }))
        this.tail = undefined
        this.pipelined = false
        return
      }
    }
    for (let i = 0; i <= landed; i++) {
      const x = sealed[i] as (typeof sealed)[number]
      this.tail = { seq: x.event.seq, hash: x.event.hash }
      this.appended++
      x.p.resolve(x.event)
    }
    if (landed < sealed.length - 1) {
      this.tail = undefined
      this.pipelined = false
      this.queue.unshift(...sealed.slice(landed + 1).map((x) => x.p))
    }
  }

  /** Index of the last of `events` (consecutive, from the anchor on) stored at its own sequence; -1 if none. */
  private async landedPrefix(events: readonly AuditEvent[]): Promise<number> {
    let landed = -1
    for (const e of events) {
      const msg = await retryTransient(() => this.jsm.streams.getMessage(AUDIT_STREAM, { seq: e.seq }), 10_000)
      const stored = msg ? AuditEventSchema.safeParse(safeJson(msg.string())) : undefined
      if (!stored?.success || stored.data.hash !== e.hash) break
      landed++
    }
    return landed
  }

  private async appendOne(body: AuditBodySource): Promise<AuditEvent> {
    let lastErr: unknown
    const deadline = Date.now() + 30_000
    for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
      let tail: { seq: number, hash: string }
      try { tail = this.tail ?? await this.readTail() } catch (err) {
        lastErr = err
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** Math.min(attempt, 5))))
        continue
      }
      const event = seal(body, { seq: tail.seq + 1, prev: tail.hash, at: new Date().toISOString(), instance: this.instance })
      try {
        // The hash doubles as the message id, so a retried publish that already landed is not stored twice.
        const ack = await this.js.publish(AUDIT_SUBJECT, JSON.stringify(event), { expect: { lastSequence: tail.seq }, msgID: event.hash })
        if (ack.duplicate || ack.seq !== event.seq) { this.tail = undefined; continue }
        this.tail = { seq: event.seq, hash: event.hash }
        this.appended++
        return event
      } catch (err) {
        lastErr = err
        this.tail = undefined
        if ((err as { code?: number }).code === WRONG_LAST_SEQUENCE) {
          this.conflicts++
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt + 1)))
          continue
        }
        // Timeouts and leader changes: the append may or may not have landed; the re-read tail decides.
        if (attempt % 20 === 0) this.log.warn({ err, attempt }, 'audit append failed; retrying')
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** Math.min(attempt, 5))))
        const t = await this.readTail().catch(() => undefined)
        if (t && t.hash === event.hash) { this.tail = t; this.appended++; return event }
      }
    }
    throw new AuditAppendError(`cannot append ${typeof body === 'function' ? 'an event' : body.type} to ${AUDIT_STREAM}`, { cause: lastErr })
  }

  private async readTail(): Promise<{ seq: number, hash: string }> {
    const info = await this.jsm.streams.info(AUDIT_STREAM)
    const last = info.state.last_seq
    if (last === 0) return { seq: 0, hash: GENESIS_HASH }
    // By subject, not by sequence: a deleted tail message still leaves the chain appendable.
    const msg = await this.jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: AUDIT_SUBJECT }).catch(() => null)
    const parsed = AuditEventSchema.safeParse(msg ? safeJson(msg.string()) : undefined)
    // A tampered tail still gets linked to by what it claims; verify reports it.
    const hash = parsed.success ? parsed.data.hash : GENESIS_HASH
    const t = { seq: last, hash }
    this.tail = t
    return t
  }

  /** The stream's last sequence (0 when empty). */
  async lastSeq(): Promise<number> {
    return (await retryTransient(() => this.jsm.streams.info(AUDIT_STREAM))).state.last_seq
  }

  /** Reads stored events in order from `fromSeq` (up to the last one stored when called). */
  async *read(fromSeq = 1): AsyncGenerator<StoredEvent & { streamSeq: number }> {
    const info = await retryTransient(() => this.jsm.streams.info(AUDIT_STREAM))
    const last = info.state.last_seq
    if (last === 0 || fromSeq > last) return
    const consumer = await retryTransient(() => this.js.consumers.get(AUDIT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) }))
    const messages = await consumer.consume({ max_messages: 512 })
    try {
      for await (const m of messages) {
        yield { text: m.string(), streamSeq: m.seq }
        if (m.seq >= last || m.info.pending === 0) break
      }
    } finally { messages.stop() }
  }

  /**
   * Calls `listener` with each event stored from the moment the returned
   * promise resolves, by any instance (resumes after server loss); resolves
   * with the unsubscribe. The stream is only followed while someone listens:
   * an idle control plane does not pull, parse and validate every event it
   * appends a second time.
   */
  async follow(listener: (e: AuditEvent) => void): Promise<() => void> {
    this.followers.add(listener)
    const feed = this.feed ??= this.startFeed()
    const unsubscribe = (): void => {
      if (!this.followers.delete(listener) || this.followers.size > 0) return
      this.feed?.stop()
      this.feed = undefined
    }
    try { await feed.ready } catch (err) { unsubscribe(); throw err }
    return unsubscribe
  }

  private startFeed(): { ready: Promise<void>, stop(): void } {
    let stopped = false
    let current: ConsumerMessages | undefined
    let lastSeq = 0
    const open = async (): Promise<ConsumerMessages> => {
      const consumer = await this.js.consumers.get(AUDIT_STREAM, lastSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 }
        : { deliver_policy: DeliverPolicy.New })
      return consumer.consume({ max_messages: 256 })
    }
    const ready = open().then((messages) => {
      current = messages
      if (stopped) { messages.stop(); return }
      void (async () => {
        while (!stopped) {
          try {
            current ??= await open()
            if (stopped) { current.stop(); break }
            for await (const m of current) {
              lastSeq = m.seq
              const parsed = AuditEventSchema.safeParse(safeJson(m.string()))
              if (parsed.success) for (const l of [...this.followers]) l(parsed.data)
            }
          } catch (err) {
            if (!stopped) this.log.warn({ err }, 'live audit feed interrupted; resuming')
          }
          current = undefined
          if (!stopped) await new Promise((r) => setTimeout(r, 500))
        }
      })()
    })
    // A failed start is the caller's to report; the feed is discarded by its unsubscribe.
    ready.catch(() => {})
    const feed = { ready, stop: () => { stopped = true; current?.stop(); if (this.feed === feed) this.feed = undefined } }
    return feed
  }

  /** The newest stored event (by any instance): `empty` for an empty stream, `event` undefined when the newest does not parse. */
  async lastEvent(): Promise<{ empty: true } | { empty: false, event: AuditEvent | undefined }> {
    const info = await this.jsm.streams.info(AUDIT_STREAM)
    if (info.state.last_seq === 0) return { empty: true }
    const msg = await this.jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: AUDIT_SUBJECT }).catch(() => null)
    const parsed = AuditEventSchema.safeParse(msg ? safeJson(msg.string()) : undefined)
    return { empty: false, event: parsed.success ? parsed.data : undefined }
  }

  /** What verification needs to know of the stream itself: its sequence range and retention. */
  async streamState(): Promise<{ firstSeq: number, lastSeq: number, messages: number, maxAgeMs: number, denyDelete: boolean, denyPurge: boolean }> {
    const info = await retryTransient(() => this.jsm.streams.info(AUDIT_STREAM))
    return {
      firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, messages: info.state.messages,
      maxAgeMs: Math.round((info.config.max_age ?? 0) / 1_000_000), denyDelete: info.config.deny_delete === true, denyPurge: info.config.deny_purge === true,
    }
  }

  stop(): void {
    this.followers.clear()
    this.feed?.stop()
  }
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}
