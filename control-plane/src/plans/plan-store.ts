/**
 * Plans in JetStream, like runs: the `WRIT_PLANS` bucket holds each plan's
 * frozen record (`<id>.plan`, written once) and its small changing state
 * (`<id>.state`: status, decisions, the rollout's owner lease, a halt;
 * revision-checked updates), and the `WRIT_PLAN_LOG` stream holds its
 * progress (`writ.v1.plans.<id>.dispatch|results`), one message per batch of
 * targets. A dispatch is appended expecting the plan's last dispatch
 * sequence, so two instances that both think they own a plan can never both
 * record one. Every instance watches the states, so any of them can answer
 * for a plan and take over one whose owner died.
 */
import { EventEmitter } from 'node:events'
import type { NatsConnection } from '@nats-io/transport-node'
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import type { Logger } from 'pino'
import { PLAN_LOG_STREAM, planLogSubject, retryTransient, withJetStreamRetry } from '../nats/index.js'
import { PlanProgress } from './plan-progress.js'
import { LogEntrySchema, PlanSchema, PlanStateSchema, type LogEntry, type Plan, type PlanState } from './plan-schemas.js'

export const PLANS_BUCKET = 'WRIT_PLANS'
const WRONG_LAST_SEQUENCE = 10071
const PLAN_CACHE = 200

export class PlanStoreError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'PlanStoreError' }
}

/** A dispatch another instance recorded first: this one is not (or no longer) the plan's owner. */
export class DispatchConflict extends Error {
  constructor(planId: string) { super(`another instance recorded a dispatch of plan ${planId} first`); this.name = 'DispatchConflict' }
}

export class PlanStore {
  private readonly events = new EventEmitter()
  private readonly states = new Map<string, { state: PlanState, revision: number }>()
  private readonly plans = new Map<string, Plan>()
  private readonly js: JetStreamClient
  private stopWatch: (() => void) | undefined

  private constructor(nc: NatsConnection, private readonly kv: KV, private readonly jsm: JetStreamManager, private readonly log: Logger) {
    this.js = jetstream(nc)
    this.events.setMaxListeners(0)
  }

  static async open(nc: NatsConnection, replicas: number, log: Logger): Promise<PlanStore> {
    const kv = await withJetStreamRetry(`bucket ${PLANS_BUCKET}`, () => new Kvm(nc).create(PLANS_BUCKET, { replicas, history: 1 }))
    return new PlanStore(nc, kv, await jetstreamManager(nc), log)
  }

  /** Follows every plan's state (any instance's writes); resolves once the stored ones are loaded. */
  async startWatch(): Promise<void> {
    let stopped = false
    let current: { stop(): void } | undefined
    this.stopWatch = () => { stopped = true; current?.stop() }
    let loaded: () => void = () => {}
    const initial = new Promise<void>((r) => { loaded = r })
    let lastRevision = 0
    if ((await this.kv.status()).values === 0) loaded()
    void (async () => {
      while (!stopped) {
        try {
          const it = await this.kv.watch({ key: '*.state', ...(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {}) })
          current = it
          for await (const e of it) {
            lastRevision = Math.max(lastRevision, e.revision)
            if (e.operation === 'PUT') {
              const parsed = PlanStateSchema.safeParse(safeJson(e.value))
              if (parsed.success) this.observe(parsed.data, e.revision)
            }
            if (e.delta === 0 || e.isUpdate) loaded()
          }
        } catch (err) {
          if (!stopped) this.log.warn({ err }, 'plan watch interrupted; resuming')
        }
        loaded()
        if (!stopped) await new Promise((r) => setTimeout(r, 500))
      }
    })()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([initial, new Promise((r) => { timer = setTimeout(r, 5000) })])
    clearTimeout(timer)
  }

  private observe(state: PlanState, revision: number): void {
    const known = this.states.get(state.id)
    if (known && known.revision >= revision) return
    this.states.set(state.id, { state, revision })
    this.events.emit(state.id, state)
    this.events.emit('*', state)
  }

  /** Stores a new plan and its first state; the plan record never changes after this. */
  async create(plan: Plan, state: PlanState): Promise<void> {
    await retryTransient(() => this.kv.create(`${plan.id}.plan`, JSON.stringify(plan)))
    this.plans.set(plan.id, plan)
    const revision = await retryTransient(() => this.kv.create(`${plan.id}.state`, JSON.stringify(state)))
    this.observe(state, revision)
  }

  /** The frozen plan (cached: it never changes). */
  async plan(id: string): Promise<Plan | undefined> {
    const hit = this.plans.get(id)
    if (hit) return hit
    const e = await retryTransient(() => this.kv.get(`${id}.plan`))
    if (!e || e.operation !== 'PUT') return undefined
    const parsed = PlanSchema.safeParse(safeJson(e.value))
    if (!parsed.success) throw new PlanStoreError(`plan record ${id} is malformed: ${parsed.error.issues[0]?.message ?? ''}`)
    if (this.plans.size >= PLAN_CACHE) this.plans.delete(this.plans.keys().next().value as string)
    this.plans.set(id, parsed.data)
    return parsed.data
  }

  /** The plan's state as this instance last saw it, else as stored. */
  async state(id: string): Promise<PlanState | undefined> {
    const known = this.states.get(id)
    if (known) return known.state
    return (await this.readState(id))?.state
  }

  private async readState(id: string): Promise<{ state: PlanState, revision: number } | undefined> {
    const e = await retryTransient(() => this.kv.get(`${id}.state`))
    if (!e || e.operation !== 'PUT') return undefined
    const parsed = PlanStateSchema.safeParse(safeJson(e.value))
    if (!parsed.success) throw new PlanStoreError(`plan state ${id} is malformed: ${parsed.error.issues[0]?.message ?? ''}`)
    this.observe(parsed.data, e.revision)
    return { state: parsed.data, revision: e.revision }
  }

  /** A revision-checked change of a plan's state; `change` returns undefined to leave it. Resolves with the state as it then is. */
  async updateState(id: string, change: (s: PlanState) => PlanState | undefined): Promise<{ state: PlanState, changed: boolean } | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const current = (attempt === 0 ? this.states.get(id) : undefined) ?? await this.readState(id)
      if (!current) return undefined
      const next = change(current.state)
      if (!next) return { state: current.state, changed: false }
      next.updated_at = new Date().toISOString()
      try {
        const revision = await retryTransient(() => this.kv.update(`${id}.state`, JSON.stringify(next), current.revision))
        this.observe(next, revision)
        return { state: next, changed: true }
      } catch (err) {
        if ((err as { code?: number }).code !== WRONG_LAST_SEQUENCE) throw new PlanStoreError(`cannot update plan ${id}`, { cause: err })
        this.states.delete(id)
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)))
      }
    }
    throw new PlanStoreError(`plan ${id}: too many concurrent updates`)
  }

  /** Every state this instance knows, newest plan first. */
  list(): PlanState[] {
    return [...this.states.values()].map((s) => s.state).sort((a, b) => (a.id < b.id ? 1 : -1))
  }

  onChange(listener: (s: PlanState) => void): () => void {
    this.events.on('*', listener)
    return () => this.events.off('*', listener)
  }

  /** Resolves with the state once `done` holds, or as it is after `timeoutMs`. */
  async waitFor(id: string, done: (s: PlanState) => boolean, timeoutMs: number): Promise<PlanState | undefined> {
    let listener: ((s: PlanState) => void) | undefined
    let timer: NodeJS.Timeout | undefined
    try {
      const now = await this.state(id)
      if (!now || done(now) || timeoutMs <= 0) return now
      return await new Promise<PlanState>((resolve) => {
        listener = (s) => { if (done(s)) resolve(s) }
        this.events.on(id, listener)
        timer = setTimeout(() => resolve(this.states.get(id)?.state ?? now), timeoutMs)
      })
    } finally {
      if (listener) this.events.off(id, listener)
      clearTimeout(timer)
    }
  }

  /** Appends a results entry (any instance may). */
  async appendResults(id: string, entry: Extract<LogEntry, { kind: 'results' }>): Promise<number> {
    const ack = await retryTransient(() => this.js.publish(planLogSubject(id, 'results'), JSON.stringify(entry)))
    return ack.seq
  }

  /** Appends a dispatch entry right after the plan's last one (`afterSeq`, 0 for the first), or throws DispatchConflict. */
  async appendDispatch(id: string, entry: Extract<LogEntry, { kind: 'dispatch' }>, afterSeq: number): Promise<number> {
    try {
      const ack = await this.js.publish(planLogSubject(id, 'dispatch'), JSON.stringify(entry), { expect: { lastSubjectSequence: afterSeq } })
      return ack.seq
    } catch (err) {
      if ((err as { code?: number }).code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test(String((err as Error).message))) throw new DispatchConflict(id)
      throw err
    }
  }

  /** The highest sequence the plan's log holds now (0 when empty). */
  private async logHead(id: string): Promise<number> {
    let head = 0
    for (const kind of ['dispatch', 'results'] as const) {
      const m = await this.jsm.streams.getMessage(PLAN_LOG_STREAM, { last_by_subj: planLogSubject(id, kind) }).catch(() => null)
      if (m) head = Math.max(head, m.seq)
    }
    return head
  }

  /**
   * Folds the plan's log into `progress` and keeps following it; resolves
   * once everything stored when it was called is applied. Call `stop` to end.
   */
  async follow(id: string, progress: PlanProgress): Promise<{ stop(): void }> {
    let stopped = false
    let messages: ConsumerMessages | undefined
    const head = await this.logHead(id)
    let caughtUp: () => void = () => {}
    const ready = new Promise<void>((r) => { caughtUp = r })
    if (progress.lastSeq >= head) caughtUp()
    void (async () => {
      while (!stopped) {
        try {
          const consumer = await this.js.consumers.get(PLAN_LOG_STREAM, {
            // One subject filter (a string): nats-server 2.9 has no filter_subjects.
            filter_subjects: `writ.v1.plans.${id}.*`,
            ...(progress.lastSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: progress.lastSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
          })
          messages = await consumer.consume({ max_messages: 256 })
          if (stopped) { messages.stop(); break }
          for await (const m of messages) {
            const parsed = LogEntrySchema.safeParse(safeJson(m.data))
            if (parsed.success) progress.apply(parsed.data, m.seq)
            else this.log.warn({ plan: id, seq: m.seq }, 'ignored a malformed plan log entry')
            if (progress.lastSeq >= head) caughtUp()
          }
        } catch (err) {
          if (!stopped) this.log.warn({ err, plan: id }, 'plan log interrupted; resuming')
        }
        if (!stopped) await new Promise((r) => setTimeout(r, 250))
      }
    })()
    await ready
    return { stop: () => { stopped = true; messages?.stop() } }
  }

  /** The plan's progress as stored now, read once. */
  async progress(id: string): Promise<PlanProgress> {
    const progress = new PlanProgress()
    const f = await this.follow(id, progress)
    f.stop()
    return progress
  }

  stop(): void { this.stopWatch?.() }
}

function safeJson(bytes: Uint8Array): unknown {
  try { return JSON.parse(new TextDecoder().decode(bytes)) } catch { return undefined }
}
