/**
 * Grants in the `WRIT_GRANTS` JetStream KV bucket, shared by every replica.
 * Nothing is cached: whether a grant covers a request is read from the bucket
 * on every dispatch, and each use is a revision-checked update, so a
 * revocation on one replica holds on the next dispatch on every other, and
 * two replicas never spend one use twice.
 *
 * A key is `<principal key>.<grant id>`, so the grants of one principal are
 * found by a key filter without reading anyone else's.
 */
import { createHash } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import type { Logger } from 'pino'
import { retryTransient, withJetStreamRetry } from '../nats/index.js'
import { GrantRecordSchema, type GrantRecord } from './grant-schemas.js'

export const GRANTS_BUCKET = 'WRIT_GRANTS'
/** JetStream's answer to a revision-checked write that lost the race. */
const WRONG_LAST_SEQUENCE = 10071

export interface StoredGrant { record: GrantRecord, revision: number, key: string }

/** A principal id as a KV key token (ids may hold "@", which keys may not). */
function principalKey(principal: string): string {
  return createHash('sha256').update(principal).digest('hex').slice(0, 16)
}

export class GrantStoreError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'GrantStoreError' }
}

export class GrantStore {
  private constructor(private readonly kv: KV, private readonly log: Logger) {}

  static async open(nc: NatsConnection, replicas: number, log: Logger): Promise<GrantStore> {
    const kv = await withJetStreamRetry(`bucket ${GRANTS_BUCKET}`, () => new Kvm(nc).create(GRANTS_BUCKET, { replicas, history: 5 }))
    return new GrantStore(kv, log)
  }

  async create(record: GrantRecord): Promise<void> {
    const key = `${principalKey(record.terms.principal.id)}.${record.terms.id}`
    await retryTransient(() => this.kv.create(key, JSON.stringify(record)))
  }

  private async read(key: string): Promise<StoredGrant | undefined> {
    const e = await retryTransient(() => this.kv.get(key))
    if (!e || e.operation !== 'PUT') return undefined
    let json: unknown
    try { json = JSON.parse(e.string()) } catch { json = undefined }
    const parsed = GrantRecordSchema.safeParse(json)
    if (!parsed.success) {
      this.log.warn({ key }, 'ignored a malformed grant record')
      return undefined
    }
    return { record: parsed.data, revision: e.revision, key }
  }

  private async keys(filter: string): Promise<string[]> {
    const found: string[] = []
    for await (const k of await retryTransient(() => this.kv.keys(filter))) found.push(k)
    return found
  }

  async get(id: string): Promise<StoredGrant | undefined> {
    const [key] = await this.keys(`*.${id}`)
    return key === undefined ? undefined : this.read(key)
  }

  /** Every grant for one principal, as stored now. */
  async forPrincipal(principal: string): Promise<StoredGrant[]> {
    return this.readAll(await this.keys(`${principalKey(principal)}.*`))
  }

  async list(): Promise<StoredGrant[]> {
    return this.readAll(await this.keys('>'))
  }

  private async readAll(keys: string[]): Promise<StoredGrant[]> {
    const read = await Promise.all(keys.map((k) => this.read(k)))
    return read.filter((g): g is StoredGrant => g !== undefined)
  }

  /**
   * Applies `change` to the grant as stored now, revision-checked: when
   * another replica wrote meanwhile, it is read again and `change` decides
   * again. `change` returns undefined to leave it as it is (or throws).
   * Resolves with the grant as stored after, and whether this call wrote it.
   */
  async update(id: string, change: (g: GrantRecord) => GrantRecord | undefined): Promise<{ record: GrantRecord, written: boolean } | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.get(id)
      if (!current) return undefined
      const next = change(current.record)
      if (!next) return { record: current.record, written: false }
      try {
        await this.kv.update(current.key, JSON.stringify(next), current.revision)
        return { record: next, written: true }
      } catch (err) {
        // A wrong last sequence: another replica wrote first. Anything else is not ours to retry.
        if ((err as { code?: number }).code !== WRONG_LAST_SEQUENCE) throw new GrantStoreError(`cannot update grant ${id}`, { cause: err })
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)))
      }
    }
    throw new GrantStoreError(`grant ${id} kept changing under 20 attempts to update it`)
  }
}
