/**
 * One-time sign-in links (what `writ dev` prints): a random code whose hash
 * is kept in the `WRIT_PORTAL_LINKS` bucket for a short while. Redeeming is a
 * revision-checked update, so a link signs in once, on any replica.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { withJetStreamRetry } from '../nats/index.js'

export const LINKS_BUCKET = 'WRIT_PORTAL_LINKS'
const LINK_TTL_MS = 15 * 60_000

export type LinkLookup = { ok: true, operator: string, revision: number, key: string } | { ok: false, message: string }

const keyOf = (code: string): string => createHash('sha256').update(code).digest('hex')

export class SignInLinks {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<SignInLinks> {
    const kv = await withJetStreamRetry(`bucket ${LINKS_BUCKET}`, () => new Kvm(nc).create(LINKS_BUCKET, { replicas, history: 1, ttl: LINK_TTL_MS }))
    return new SignInLinks(kv)
  }

  /** A fresh code that signs `operator` in once, within 15 minutes. */
  async mint(operator: string): Promise<string> {
    const code = randomBytes(24).toString('base64url')
    await this.kv.create(keyOf(code), JSON.stringify({ operator, expires_at: new Date(Date.now() + LINK_TTL_MS).toISOString() }))
    return code
  }

  /** What a code would sign in as, without using it (the GET of the link). */
  async peek(code: string): Promise<LinkLookup> {
    if (!/^[A-Za-z0-9_-]{32}$/.test(code)) return { ok: false, message: 'this sign-in link is not valid' }
    const key = keyOf(code)
    const e = await this.kv.get(key)
    if (!e || e.operation !== 'PUT') return { ok: false, message: 'this sign-in link is not valid or has expired' }
    let v: { operator?: string, expires_at?: string, used_at?: string }
    try { v = JSON.parse(e.string()) } catch { return { ok: false, message: 'this sign-in link is not valid' } }
    if (v.used_at) return { ok: false, message: 'this sign-in link was used already; ask for a new one' }
    if (!v.operator || !v.expires_at || Date.parse(v.expires_at) <= Date.now()) return { ok: false, message: 'this sign-in link has expired' }
    return { ok: true, operator: v.operator, revision: e.revision, key }
  }

  /** Uses the code: resolves with the operator id once, and with a refusal every later time. */
  async redeem(code: string): Promise<LinkLookup> {
    const hit = await this.peek(code)
    if (!hit.ok) return hit
    try {
      await this.kv.update(hit.key, JSON.stringify({ operator: hit.operator, used_at: new Date().toISOString() }), hit.revision)
    } catch {
      return { ok: false, message: 'this sign-in link was used already; ask for a new one' }
    }
    return hit
  }
}
