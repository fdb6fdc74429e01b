/**
 * Where the authorization server keeps its state (clients it registered,
 * interactions, codes, grants, tokens): the `WRIT_OAUTH` JetStream KV bucket,
 * behind oidc-provider's adapter interface. Every replica reads the same
 * bucket, so a grant revoked on one is gone for all of them on the next call.
 * Codes and refresh tokens are consumed with a compare-and-set, so two
 * replicas racing on one code cannot both redeem it.
 */
import { createHash } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import type { Adapter, AdapterPayload } from 'oidc-provider'
import { withJetStreamRetry } from '../nats/index.js'

export const OAUTH_BUCKET = 'WRIT_OAUTH'

/** Models whose entries belong to a grant (revoked with it). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])

interface Stored { payload: AdapterPayload, expires_at: number | null }

/** A KV key part for any id: ids in the token alphabet as they are, anything else (a client id that is a URL) hashed. */
function part(id: string): string {
  return /^[A-Za-z0-9_-]{1,200}$/.test(id) ? id : `h${createHash('sha256').update(id).digest('hex')}`
}

export class OAuthStore {
  /** `invalidGrant` makes oidc-provider's own error (a 400 `invalid_grant`) for a code or refresh token used twice. */
  private constructor(private readonly kv: KV, readonly invalidGrant: (detail: string) => Error) {}

  /** Opens the bucket; nothing in it outlives `maxAgeMs` after its last write (the longest a grant lasts). */
  static async open(nc: NatsConnection, replicas: number, maxAgeMs: number, invalidGrant: (detail: string) => Error): Promise<OAuthStore> {
    const kv = await withJetStreamRetry(`bucket ${OAUTH_BUCKET}`, () => new Kvm(nc).create(OAUTH_BUCKET, { replicas, history: 1, ttl: maxAgeMs }))
    const status = await kv.status()
    // A bucket made under another oauth.grant_ttl: its max age follows, so no grant outlives (or dies before) its consent.
    if (status.ttl !== maxAgeMs) await (await jetstreamManager(nc)).streams.update(status.streamInfo.config.name, { max_age: maxAgeMs * 1_000_000 })
    return new OAuthStore(kv, invalidGrant)
  }

  /** oidc-provider's adapter factory: one adapter per model name. */
  adapter(): (model: string) => Adapter {
    return (model: string) => new KvAdapter(this, model)
  }

  async read(key: string): Promise<{ value: Stored, revision: number } | undefined> {
    const e = await this.kv.get(key)
    if (!e || e.operation !== 'PUT') return undefined
    const value = e.json<Stored>()
    if (value.expires_at !== null && value.expires_at <= Date.now()) return undefined
    return { value, revision: e.revision }
  }

  async write(key: string, value: Stored): Promise<void> { await this.kv.put(key, JSON.stringify(value)) }

  /** Writes `value` only if the entry is still at `revision`; false when another writer came first. */
  async swap(key: string, value: Stored, revision: number): Promise<boolean> {
    try {
      await this.kv.update(key, JSON.stringify(value), revision)
      return true
    } catch {
      return false
    }
  }

  async remove(key: string): Promise<void> { await this.kv.delete(key) }

  async keys(filter: string): Promise<string[]> {
    const out: string[] = []
    for await (const k of await this.kv.keys(filter)) out.push(k)
    return out
  }

  /** Every stored grant (the portal's "Connected agents" reads them). */
  async grants(): Promise<Array<{ id: string, payload: AdapterPayload }>> {
    const out: Array<{ id: string, payload: AdapterPayload }> = []
    for (const key of await this.keys('Grant.*')) {
      const hit = await this.read(key)
      if (hit?.value.payload.jti) out.push({ id: hit.value.payload.jti, payload: hit.value.payload })
    }
    return out
  }

  /** Deletes a grant and everything issued under it (codes, access and refresh tokens). */
  async revokeGrant(grantId: string): Promise<void> {
    for (const key of await this.keys(`grant_index.${part(grantId)}.>`)) {
      const [, , model, id] = key.split('.')
      if (model && id) await this.remove(`${model}.${id}`)
      await this.remove(key)
    }
    await this.remove(`Grant.${part(grantId)}`)
  }
}

class KvAdapter implements Adapter {
  constructor(private readonly store: OAuthStore, private readonly model: string) {}

  private key(id: string): string { return `${this.model}.${part(id)}` }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = typeof expiresIn === 'number' && expiresIn > 0 ? Date.now() + expiresIn * 1000 : null
    await this.store.write(this.key(id), { payload, expires_at: expiresAt })
    if (GRANTABLE.has(this.model) && typeof payload.grantId === 'string') {
      await this.store.write(`grant_index.${part(payload.grantId)}.${this.model}.${part(id)}`, { payload: {}, expires_at: expiresAt })
    }
    if (typeof payload.uid === 'string') await this.store.write(`uid_index.${this.model}.${part(payload.uid)}`, { payload: { jti: id }, expires_at: expiresAt })
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return (await this.store.read(this.key(id)))?.value.payload
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const index = await this.store.read(`uid_index.${this.model}.${part(uid)}`)
    const id = index?.value.payload.jti
    return typeof id === 'string' ? this.find(id) : undefined
  }

  async findByUserCode(): Promise<AdapterPayload | undefined> { return undefined }

  /** Marks a code or refresh token used, once: the second of two racing redemptions is refused. */
  async consume(id: string): Promise<void> {
    const key = this.key(id)
    const hit = await this.store.read(key)
    if (!hit || hit.value.payload.consumed) throw this.store.invalidGrant(`${this.model} was already used`)
    const consumed = { ...hit.value, payload: { ...hit.value.payload, consumed: Math.floor(Date.now() / 1000) } }
    if (!await this.store.swap(key, consumed, hit.revision)) throw this.store.invalidGrant(`${this.model} was already used`)
  }

  async destroy(id: string): Promise<void> { await this.store.remove(this.key(id)) }

  async revokeByGrantId(grantId: string): Promise<void> { await this.store.revokeGrant(grantId) }
}
