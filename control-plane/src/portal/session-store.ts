/**
 * Server-side portal sessions. The cookie says who signed in; it is not
 * enough on its own: each signed-in session has a random id whose hash is
 * kept in the `WRIT_PORTAL_SESSIONS` bucket until sign-out or its TTL. Every
 * request reads the id back, so a sign-out on any replica ends the session on
 * all of them at once, and a watch on the bucket tells this replica's open
 * live sockets of that session to close.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv'
import type { Logger } from 'pino'
import { z } from 'zod'
import { withJetStreamRetry } from '../nats/index.js'

export const SESSIONS_BUCKET = 'WRIT_PORTAL_SESSIONS'

const SessionRecordSchema = z.object({ operator: z.string(), via: z.string(), signed_in_at: z.string(), expires_at: z.string() })
export type SessionRecord = z.infer<typeof SessionRecordSchema>

const keyOf = (sid: string): string => createHash('sha256').update(sid).digest('hex')
const SID = /^[A-Za-z0-9_-]{43}$/

export class PortalSessions {
  /** Who to tell when a session ends, by key (this replica's open live sockets). */
  private readonly listeners = new Map<string, Set<() => void>>()
  private stopped = false
  private watch: { stop(): void } | undefined

  private constructor(private readonly kv: KV, private readonly log: Logger) {}

  /** Opens the bucket; entries live as long as a session may (`ttlMs`, `portal.session_ttl`). */
  static async open(nc: NatsConnection, replicas: number, ttlMs: number, log: Logger): Promise<PortalSessions> {
    const kv = await withJetStreamRetry(`bucket ${SESSIONS_BUCKET}`, () => new Kvm(nc).create(SESSIONS_BUCKET, { replicas, history: 1, ttl: ttlMs }))
    const status = await kv.status()
    if (status.ttl !== ttlMs) {
      // A bucket made under another session_ttl: bring its max age along, so no entry outlives (or dies before) its session.
      const jsm = await jetstreamManager(nc)
      await jsm.streams.update(status.streamInfo.config.name, { max_age: ttlMs * 1_000_000 })
      log.info({ bucket: SESSIONS_BUCKET, ttl_ms: ttlMs }, 'portal session bucket max age follows portal.session_ttl')
    }
    const sessions = new PortalSessions(kv, log)
    sessions.follow()
    return sessions
  }

  /** Records a new signed-in session; returns its id (what the cookie keeps). */
  async create(operator: string, via: string, signedInAt: number, expiresAt: number): Promise<string> {
    const sid = randomBytes(32).toString('base64url')
    const record: SessionRecord = { operator, via, signed_in_at: new Date(signedInAt).toISOString(), expires_at: new Date(expiresAt).toISOString() }
    await this.kv.create(keyOf(sid), JSON.stringify(record))
    return sid
  }

  /** Whether `sid` names a session that was neither signed out nor outlived, for `operator`. */
  async isLive(sid: string, operator: string): Promise<boolean> {
    if (!SID.test(sid)) return false
    const e = await this.kv.get(keyOf(sid))
    if (!e || e.operation !== 'PUT') return false
    let parsed
    try { parsed = SessionRecordSchema.safeParse(JSON.parse(e.string())) } catch { return false }
    return parsed.success && parsed.data.operator === operator && Date.parse(parsed.data.expires_at) > Date.now()
  }

  /** Ends `sid` on every replica (sign-out, a new sign-in in the same browser, a session past its TTL). */
  async revoke(sid: string): Promise<void> {
    if (!SID.test(sid)) return
    await this.kv.delete(keyOf(sid))
  }

  /** Calls `listener` once when `sid` is revoked on any replica; returns the unsubscribe. */
  onEnd(sid: string, listener: () => void): () => void {
    const key = keyOf(sid)
    let set = this.listeners.get(key)
    if (!set) this.listeners.set(key, set = new Set())
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key)
    }
  }

  close(): void {
    this.stopped = true
    this.watch?.stop()
  }

  /** Follows deletes in the bucket (from any replica) for as long as the portal runs; restarts after a server loss. */
  private follow(): void {
    void (async () => {
      for (let restart = false; !this.stopped; restart = true) {
        try {
          const it = await this.kv.watch({ include: KvWatchInclude.UpdatesOnly })
          this.watch = it
          if (this.stopped) { it.stop(); break }
          // A revocation made while the watch was down is found by reading back what is still followed.
          if (restart) for (const key of [...this.listeners.keys()]) if ((await this.kv.get(key))?.operation !== 'PUT') this.ended(key)
          for await (const e of it) if (e.operation !== 'PUT') this.ended(e.key)
        } catch (err) {
          if (!this.stopped) this.log.warn({ err }, 'portal session watch interrupted; resuming')
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, 500))
      }
    })()
  }

  private ended(key: string): void {
    const set = this.listeners.get(key)
    this.listeners.delete(key)
    for (const listener of set ?? []) listener()
  }
}
