/**
 * Operations that survive a lost reply: a run or plan request may carry an
 * idempotency key (`operation_id` on MCP, `Idempotency-Key` on REST). The
 * first request with a key claims it in the JetStream KV bucket
 * `WRIT_OPERATIONS` — `create` is create-if-absent, so two replicas and
 * concurrent retries agree on one owner — together with the id the run or
 * plan will have; the owner starts it under that id. Any later request with
 * the same key from the same principal gets that same run or plan back and
 * never dispatches a second one; with other arguments it is refused (422).
 *
 * Keys are per principal (the bucket key is a digest of principal and key)
 * and live `runs.operation_ttl`, never less than the longest approval window.
 * A claim whose request failed before anything was recorded is released, so a
 * corrected retry may use the key again; a refusal that recorded a run (a
 * policy denial) is kept and answered again on a retry.
 */
import { createHash } from 'node:crypto'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import type { Principal } from '../auth/index.js'
import { OperationInProgress, OperationKeyReused, detailsOf, withDetails } from '../http/index.js'
import { isTransientJetStreamError, retryTransient, withJetStreamRetry } from '../nats/index.js'

export const OPERATIONS_BUCKET = 'WRIT_OPERATIONS'

/** What an idempotency key may be (both surfaces). */
export const OPERATION_ID_RE = /^[A-Za-z0-9_.:-]{1,200}$/

export interface OperationRecord {
  operation_id: string
  principal: string
  /** SHA-256 of the request's arguments (what it asks for, not how long to wait). */
  fingerprint: string
  kind: 'run' | 'plan'
  /** The run or plan id, fixed when the key is claimed. */
  target_id: string
  /** started: claimed, the run or plan being recorded; done: recorded; refused: recorded as refused (the error is kept). */
  state: 'started' | 'done' | 'refused'
  created_at: string
  updated_at: string
  error?: { code: string, message: string, statusCode: number, details?: Record<string, unknown> }
}

export interface OperationOutcome<T> { value: T, replayed: boolean, record: OperationRecord }

/** Canonical JSON (sorted keys), so the same arguments in another order are the same request. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

export function fingerprintOf(request: unknown): string {
  return createHash('sha256').update(canonical(request)).digest('hex')
}

function keyOf(principal: string, operationId: string): string {
  return `op.${createHash('sha256').update(`${principal}\0${operationId}`).digest('hex')}`
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface OperationsOptions {
  /** How long a retry waits for an earlier request holding the key to record its run, before answering 409. */
  waitMs?: number
  /** A claim older than this with nothing recorded (its instance stopped mid-request) is taken over. */
  staleMs?: number
}

export class Operations {
  private constructor(private readonly kv: KV, private readonly opts: Required<OperationsOptions>) {}

  /** Opens (creating if needed) the bucket; entries live `ttlMs`. */
  static async open(nc: NatsConnection, replicas: number, ttlMs: number, log: Logger, opts: OperationsOptions = {}): Promise<Operations> {
    const kv = await withJetStreamRetry(`bucket ${OPERATIONS_BUCKET}`, () => new Kvm(nc).create(OPERATIONS_BUCKET, { replicas, history: 1, ttl: ttlMs }))
    const status = await kv.status()
    if (status.ttl !== ttlMs) {
      const jsm = await jetstreamManager(nc)
      await jsm.streams.update(status.streamInfo.config.name, { max_age: ttlMs * 1_000_000 })
      log.info({ bucket: OPERATIONS_BUCKET, ttl_ms: ttlMs }, 'operations bucket max age follows runs.operation_ttl')
    }
    return new Operations(kv, { waitMs: opts.waitMs ?? 15_000, staleMs: opts.staleMs ?? 60_000 })
  }

  /** What became of `operationId` for `principal`, if it is known. */
  async get(principal: Principal, operationId: string): Promise<OperationRecord | undefined> {
    const e = await retryTransient(() => this.kv.get(keyOf(principal.id, operationId)))
    return e && e.operation === 'PUT' ? e.json<OperationRecord>() : undefined
  }

  /**
   * Runs `start(id)` once for `principal`'s `operationId`: the first request
   * claims the key with a fresh id (`newId`) and starts it; later ones with
   * the same key get `existing(id)` (what the first one recorded).
   */
  async once<T>(
    principal: Principal, operationId: string, kind: OperationRecord['kind'], request: unknown,
    ops: { newId: () => string, start: (id: string) => Promise<T>, existing: (id: string) => Promise<T | undefined> },
  ): Promise<OperationOutcome<T>> {
    const key = keyOf(principal.id, operationId)
    const fingerprint = fingerprintOf({ kind, request })
    const deadline = Date.now() + this.opts.waitMs
    for (let pause = 25; ; pause = Math.min(pause * 2, 500)) {
      const now = new Date().toISOString()
      const claim: OperationRecord = { operation_id: operationId, principal: principal.id, fingerprint, kind, target_id: ops.newId(), state: 'started', created_at: now, updated_at: now }
      const won = await this.claim(key, claim)
      if (won !== undefined) return { value: await this.startClaimed(key, won, claim, ops), replayed: false, record: claim }

      const e = await retryTransient(() => this.kv.get(key))
      if (!e || e.operation !== 'PUT') continue // released meanwhile: claim it again
      const rec = e.json<OperationRecord>()
      if (rec.fingerprint !== fingerprint) {
        throw withDetails(new OperationKeyReused(operationId, `a ${rec.kind} ${rec.target_id}`), { operation_id: operationId, [`${rec.kind}_id`]: rec.target_id })
      }
      if (rec.state === 'refused' && rec.error) throw storedError(rec)
      const value = await ops.existing(rec.target_id)
      if (value !== undefined) return { value, replayed: true, record: rec }
      if (rec.state === 'started' && Date.now() - Date.parse(rec.updated_at) > this.opts.staleMs) {
        // Its instance stopped between claiming and recording: nothing was started; take the claim over.
        const taken = { ...claim, created_at: rec.created_at }
        const rev = await this.kv.update(key, JSON.stringify(taken), e.revision).catch((err: unknown) => { if (isTransientJetStreamError(err)) throw err; return undefined })
        if (rev !== undefined) return { value: await this.startClaimed(key, rev, taken, ops), replayed: false, record: taken }
        continue
      }
      if (Date.now() > deadline) throw withDetails(new OperationInProgress(operationId), { operation_id: operationId, [`${rec.kind}_id`]: rec.target_id })
      await sleep(pause)
    }
  }

  /** The claim's revision, or undefined when the key is taken. */
  private async claim(key: string, rec: OperationRecord): Promise<number | undefined> {
    const value = JSON.stringify(rec)
    return retryTransient(async () => {
      try { return await this.kv.create(key, value) } catch (err) {
        if (isTransientJetStreamError(err)) throw err
        // A retried create whose first attempt landed finds its own value.
        const e = await this.kv.get(key)
        return e && e.operation === 'PUT' && e.string() === value ? e.revision : undefined
      }
    })
  }

  private async startClaimed<T>(key: string, revision: number, claim: OperationRecord, ops: { start: (id: string) => Promise<T>, existing: (id: string) => Promise<T | undefined> }): Promise<T> {
    let value: T
    try {
      value = await ops.start(claim.target_id)
    } catch (err) {
      // A refusal that recorded the run (a policy denial) stays the key's answer; one that recorded nothing frees the key.
      const recorded = await ops.existing(claim.target_id).catch(() => undefined)
      const e = err as { code?: unknown, statusCode?: unknown, message: string }
      if (recorded !== undefined && typeof e.code === 'string' && e.code.startsWith('WRIT_ERR_')) {
        const details = detailsOf(err)
        const refused: OperationRecord = {
          ...claim, state: 'refused', updated_at: new Date().toISOString(),
          error: { code: e.code, message: e.message, statusCode: typeof e.statusCode === 'number' ? e.statusCode : 400, ...(details ? { details } : {}) },
        }
        await retryTransient(() => this.kv.update(key, JSON.stringify(refused), revision)).catch(() => undefined)
      } else if (recorded === undefined) {
        await retryTransient(() => this.kv.delete(key, { previousSeq: revision })).catch(() => undefined)
      }
      throw err
    }
    await retryTransient(() => this.kv.update(key, JSON.stringify({ ...claim, state: 'done', updated_at: new Date().toISOString() }), revision)).catch(() => undefined)
    return value
  }
}

/** The refusal a key recorded, thrown again for a retry (same code, message, status and details). */
function storedError(rec: OperationRecord): Error {
  const { code, message, statusCode, details } = rec.error!
  return Object.assign(new Error(message), { code, statusCode, ...(details ? { details } : {}) })
}
