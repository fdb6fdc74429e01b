/**
 * Signs a writ for a run and hands it to the node's runner (request/reply).
 * The answer is the runner's acceptance or typed refusal; no subscriber means
 * the node is offline, and silence past the ack timeout leaves the outcome to
 * the result stream and the deadline sweeper (a writ is never sent twice).
 */
import type { NatsConnection } from '@nats-io/transport-node'
import {
  PROTOCOL_VERSION, WRIT_VERSION, WritAckSchema, signCancel, signWrit, subjects,
  type Refusal, type SignedGrant, type SigningKey, type Writ,
} from '@writ/packs/protocol'
import type { Run } from './run-record.js'
import { randomHex } from './run-ids.js'

export type DispatchOutcome =
  | { kind: 'accepted' }
  | { kind: 'refused', refusal: Refusal }
  | { kind: 'node_offline', message: string }
  | { kind: 'no_ack', message: string }

export interface DispatcherOptions { writTtlMs: number, ackTimeoutMs: number }

export class Dispatcher {
  private readonly encoder = new TextEncoder()

  constructor(private readonly nc: NatsConnection, private readonly key: SigningKey, private readonly opts: DispatcherOptions) {}

  get keyId(): string { return this.key.keyId }

  writFor(run: Run, approvals: Writ['approvals'] = [], grant?: SignedGrant): Writ {
    if (run.request_hash === undefined) throw new Error(`run ${run.id} has no request event hash; its writ cannot witness the audit chain`)
    const now = Date.now()
    return {
      v: WRIT_VERSION,
      run_id: run.id,
      node_id: run.node_id,
      node_name: run.node_name,
      action: run.action,
      pack: run.pack,
      pack_digest: run.pack_digest,
      args: run.args,
      reason: run.reason,
      requester: run.requester,
      approvals,
      ...(grant ? { grant } : {}),
      request_hash: run.request_hash,
      ...(run.session_id !== undefined ? { session_id: run.session_id } : {}),
      options: run.options,
      // A run recorded before binding v2 has none; its approvals (v1 digests) then fail the runner's check, as they must.
      binding_salt: run.binding_salt ?? randomHex(32),
      ...(run.state !== undefined ? { state: run.state } : {}),
      issued_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.opts.writTtlMs).toISOString(),
      // Same as the protocol's newNonce (16 CSPRNG bytes, hex), from the pooled entropy.
      nonce: randomHex(16),
    }
  }

  async dispatch(run: Run, approvals: Writ['approvals'] = [], grant?: SignedGrant): Promise<DispatchOutcome> {
    const signed = signWrit(this.writFor(run, approvals, grant), this.key)
    let reply
    try {
      reply = await this.nc.request(subjects.run(run.node_id), this.encoder.encode(JSON.stringify(signed)), { timeout: this.opts.ackTimeoutMs })
    } catch (err) {
      if (isNoResponders(err)) return { kind: 'node_offline', message: `no runner is listening for node ${run.node_name}` }
      return { kind: 'no_ack', message: `the runner did not acknowledge within ${this.opts.ackTimeoutMs} ms` }
    }
    let json: unknown
    try { json = reply.json() } catch { json = undefined }
    const ack = WritAckSchema.safeParse(json)
    if (!ack.success || ack.data.run_id !== run.id) {
      return { kind: 'no_ack', message: 'the runner answered with a malformed acknowledgement' }
    }
    return ack.data.accepted ? { kind: 'accepted' } : { kind: 'refused', refusal: ack.data.refusal }
  }

  /** Asks the runner to cancel a run; resolves with its answer (best effort). */
  async cancel(run: Run, by: string): Promise<{ ok: boolean, message: string }> {
    const signed = signCancel({ v: PROTOCOL_VERSION, run_id: run.id, node_id: run.node_id, issued_at: new Date().toISOString(), by }, this.key)
    try {
      const reply = await this.nc.request(subjects.cancel(run.node_id), this.encoder.encode(JSON.stringify(signed)), { timeout: this.opts.ackTimeoutMs })
      const body = reply.json() as { ok?: unknown, message?: unknown }
      return { ok: body.ok === true, message: typeof body.message === 'string' ? body.message : '' }
    } catch (err) {
      return { ok: false, message: isNoResponders(err) ? 'node is offline' : `no answer: ${(err as Error).message}` }
    }
  }
}

function isNoResponders(err: unknown): boolean {
  const e = err as { isNoResponders?: () => boolean, cause?: unknown, name?: string }
  if (typeof e?.isNoResponders === 'function' && e.isNoResponders()) return true
  return (e?.cause as { name?: string } | undefined)?.name === 'NoRespondersError' || e?.name === 'NoRespondersError'
}
