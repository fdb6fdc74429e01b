/**
 * A protocol-exact stand-in for a node-runner, for faults the real one should
 * not be made to commit: heartbeats with the real pack digests, answers writs
 * (accept, refuse, or accept and then never report), streams output chunks and
 * publishes the RunResult into JetStream like a runner does.
 */
import { createHash } from 'node:crypto'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstream } from '@nats-io/jetstream'
import { loadPacks } from '@writ/packs'
import {
  HeartbeatSchema, PROTOCOL_VERSION, SignedWritSchema, loadTrustedKey, subjects, verifySignature,
  type RunResult, type SignedWrit, type WritAck,
} from '@writ/packs/protocol'
import { readFileSync } from 'node:fs'

export type FakeMode = 'normal' | 'refuse' | 'vanish'

export interface FakeRunnerOptions {
  natsUrl: string
  nodeId: string
  nodeName?: string
  packDirs: string[]
  publicKeyFile: string
  heartbeatIntervalMs?: number
  /** How long a run takes before its result is published. */
  runDelayMs?: number
  /** Overrides the digest reported for every pack (to simulate drift). */
  reportDigest?: string
  nomad?: { datacenter?: string, node_pool?: string, node_class?: string }
}

export interface FakeRunner {
  mode: FakeMode
  runDelayMs: number
  readonly writs: SignedWrit[]
  /** Stops heartbeating and answering, as a dead host would. */
  kill(): Promise<void>
  close(): Promise<void>
}

export async function startFakeRunner(opts: FakeRunnerOptions): Promise<FakeRunner> {
  const nc: NatsConnection = await connect({ servers: opts.natsUrl.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 })
  const js = jetstream(nc)
  const trusted = [loadTrustedKey(readFileSync(opts.publicKeyFile, 'utf8'))]
  const load = loadPacks(opts.packDirs)
  const interval = opts.heartbeatIntervalMs ?? 200
  const startedAt = new Date().toISOString()
  let seq = 0
  const enc = new TextEncoder()
  const beat = (): void => {
    const hb = HeartbeatSchema.parse({
      v: PROTOCOL_VERSION, node_id: opts.nodeId, node_name: opts.nodeName ?? opts.nodeId, version: 'fake-1', started_at: startedAt,
      at: new Date().toISOString(), seq: seq++, draining: false, interval_ms: interval, in_flight: 0,
      packs: load.packs.map((p) => ({ id: p.id, version: p.version, digest: opts.reportDigest ?? p.digest, actions: p.actions.size })),
      nomad: opts.nomad ?? {},
    })
    nc.publish(subjects.heartbeat(opts.nodeId), enc.encode(JSON.stringify(hb)))
  }
  beat()
  const timer = setInterval(beat, interval)
  const runner: FakeRunner = {
    mode: 'normal', runDelayMs: opts.runDelayMs ?? 20, writs: [],
    kill: async () => { clearInterval(timer); await nc.close() },
    close: async () => { clearInterval(timer); if (!nc.isClosed()) await nc.drain() },
  }
  nc.subscribe(subjects.run(opts.nodeId), {
    callback: (_err, msg) => {
      const parsed = SignedWritSchema.safeParse(msg.json())
      if (!parsed.success) return
      const { writ } = parsed.data
      runner.writs.push(parsed.data)
      const sig = verifySignature(writ, parsed.data.key_id, parsed.data.sig ?? '', trusted)
      const refuse = runner.mode === 'refuse' || !sig.ok
      const ack: WritAck = refuse
        ? { v: PROTOCOL_VERSION, run_id: writ.run_id, node_id: opts.nodeId, accepted: false, refusal: { code: sig.ok ? 'bad_args' : sig.code, message: sig.ok ? 'fake runner told to refuse' : sig.message } }
        : { v: PROTOCOL_VERSION, run_id: writ.run_id, node_id: opts.nodeId, accepted: true }
      msg.respond(enc.encode(JSON.stringify(ack)))
      if (refuse || runner.mode === 'vanish') return
      const started = new Date()
      const stdout = `${writ.action} ${JSON.stringify(writ.args)}\n`
      nc.publish(subjects.output(opts.nodeId, writ.run_id), enc.encode(JSON.stringify({ v: PROTOCOL_VERSION, run_id: writ.run_id, seq: 0, stream: 'stdout', data: stdout })))
      setTimeout(() => {
        const result: RunResult = {
          v: PROTOCOL_VERSION, run_id: writ.run_id, node_id: opts.nodeId, action: writ.action, status: 'succeeded', exit_code: 0, signal: null,
          started_at: started.toISOString(), finished_at: new Date().toISOString(), duration_ms: Date.now() - started.getTime(),
          stdout, stderr: '', stdout_truncated: false, stderr_truncated: false, stdout_bytes: stdout.length, stderr_bytes: 0,
          output_sha256: createHash('sha256').update(stdout).digest('hex'),
        }
        // Like a real runner: keep trying until the stream takes the result (a cluster may be electing a leader).
        const publish = async (): Promise<void> => {
          for (let attempt = 0; attempt < 60 && !nc.isClosed(); attempt++) {
            try { await js.publish(subjects.result(opts.nodeId, writ.run_id), enc.encode(JSON.stringify(result)), { msgID: `result-${writ.run_id}`, timeout: 2000 }); return } catch {
              await new Promise((r) => setTimeout(r, 250))
            }
          }
        }
        void publish()
      }, runner.runDelayMs)
    },
  })
  await nc.flush()
  return runner
}

/** Waits until `check` holds (polling), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
