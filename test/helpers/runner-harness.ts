/**
 * A real node-runner on a real nats-server, with a signing key the runner
 * trusts, a canary pack written per suite, and helpers to send signed writs
 * and collect acks, output chunks and results the way a control plane would.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { pino, type Logger } from 'pino'
import { loadPacks } from '@writ/packs'
import {
  WRIT_VERSION, RunResultSchema, WritAckSchema, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit,
  streams, subjects, type RunResult, type SignedWrit, type SigningKey, type Writ, type WritAck,
} from '@writ/packs/protocol'
import { loadRunnerConfig, startNodeRunner, type NodeRunner, type RunnerConfigInput, type RunnerDeps } from '@writ/node-runner'
import { startNatsServer, type NatsServerHandle } from './nats-server.js'

export const REPO_ROOT = resolve(new URL('../..', import.meta.url).pathname)
export const STOCK_PACKS = join(REPO_ROOT, 'packs', 'stock')

export interface RunnerHarness {
  dir: string
  nats: NatsServerHandle
  nc: NatsConnection
  runner: NodeRunner
  nodeId: string
  key: SigningKey
  canaryDir: string
  listRoot: string
  journal: string
  digestOf(packId: string): string
  writ(action: string, args: Record<string, unknown>, over?: Partial<Writ>): Writ
  send(signed: SignedWrit | unknown): Promise<WritAck>
  /** Sends and waits for the final result (subscribes before sending). */
  run(action: string, args: Record<string, unknown>, over?: Partial<Writ>): Promise<{ ack: WritAck, result?: RunResult, chunks: string[] }>
  restartRunner(): Promise<void>
  stop(): Promise<void>
}

/** Writes the canary pack: actions whose only effect is visible in a temp folder. */
function writeCanaryPack(dir: string, listRoot: string, canaryDir: string): void {
  mkdirSync(join(dir, 'actions'), { recursive: true })
  writeFileSync(join(dir, 'pack.yaml'), `schema_version: 1
id: canary
name: Test canaries
version: 1.0.0
description: Actions whose only effect is a file under the suite's temp folder.
actions: [actions/mark.yaml, actions/echo.yaml, actions/ls.yaml, actions/sleep.yaml, actions/spew.yaml]
`)
  writeFileSync(join(dir, 'actions', 'mark.yaml'), `schema_version: 1
id: canary.mark
title: Create a marker file
kind: exec
risk: low
side_effects: [Creates one empty file in the canary folder.]
args:
  - name: name
    type: string
    required: true
    validation: { pattern: "^[a-z0-9-]{1,40}$" }
execution:
  command: { binary: touch, argv: ["--", "${canaryDir}/{{ args.name }}"] }
  timeout: 5s
examples: [{ title: mark, args: { name: one } }]
`)
  writeFileSync(join(dir, 'actions', 'echo.yaml'), `schema_version: 1
id: canary.echo
title: Echo free text
kind: exec
risk: low
side_effects: [None.]
args:
  - name: text
    type: string
    required: true
    validation: { max_length: 200 }
execution:
  command: { binary: printf, argv: ["%s", "{{ args.text }}"] }
  timeout: 5s
examples: [{ title: hi, args: { text: hi } }]
`)
  writeFileSync(join(dir, 'actions', 'ls.yaml'), `schema_version: 1
id: canary.ls
title: List the canary root
kind: list
risk: low
side_effects: [Read-only.]
args:
  - name: path
    type: string
    required: false
    default: ""
    validation: { pattern: "^[A-Za-z0-9._/-]{0,200}$" }
execution:
  list: { root: "${listRoot}", path: "{{ args.path }}", max_depth: 2 }
  timeout: 5s
output: { parser: json }
examples: [{ title: root, args: {} }]
`)
  writeFileSync(join(dir, 'actions', 'sleep.yaml'), `schema_version: 1
id: canary.sleep
title: Sleep, then mark
kind: exec
risk: low
side_effects: [Creates one empty file after sleeping.]
args:
  - name: seconds
    type: integer
    required: true
    validation: { min: 0, max: 60 }
execution:
  command: { binary: sleep, argv: ["{{ args.seconds }}"] }
  timeout: 2s
examples: [{ title: one second, args: { seconds: 1 } }]
`)
  writeFileSync(join(dir, 'actions', 'spew.yaml'), `schema_version: 1
id: canary.spew
title: Print many bytes
kind: exec
risk: low
side_effects: [None.]
args:
  - name: bytes
    type: integer
    required: true
    validation: { min: 1, max: 10000000 }
execution:
  command: { binary: head, argv: ["-c", "{{ args.bytes }}", "/dev/zero"] }
  timeout: 10s
output: { parser: text, max_stdout_bytes: 1000 }
examples: [{ title: small, args: { bytes: 10 } }]
`)
}

/** `nodeId` defaults to a random one; give a Nomad node UUID to test the runner against the Nomad double. */
export async function startRunnerHarness(
  opts: { extraConfig?: Partial<RunnerConfigInput>, nats?: NatsServerHandle, nodeId?: string, log?: Logger, deps?: RunnerDeps } = {},
): Promise<RunnerHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'writ-runner-'))
  const nats = opts.nats ?? await startNatsServer()
  const keys = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), keys.publicPem)
  const key = loadSigningKey(keys.privatePem)
  const canaryDir = join(dir, 'canary-out')
  const listRoot = join(dir, 'list-root')
  mkdirSync(canaryDir); mkdirSync(listRoot)
  writeCanaryPack(join(dir, 'packs', 'canary'), listRoot, canaryDir)
  const nodeId = opts.nodeId ?? `node-${randomBytes(3).toString('hex')}`
  const journal = join(dir, 'journal.jsonl')
  const packDirs = [STOCK_PACKS, join(dir, 'packs')]
  const nc = await connect({ servers: nats.url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const loaded = loadPacks(packDirs)
  const config = () => loadRunnerConfig({}, {
    WRIT_NATS_URL: nats.url, WRIT_NODE_ID: nodeId, WRIT_NODE_NAME: `${nodeId}.example`, WRIT_PACKS: packDirs.join(':'),
    WRIT_TRUSTED_KEYS: join(dir, 'trusted.pem'), WRIT_JOURNAL: journal,
  })
  const start = async (): Promise<NodeRunner> => startNodeRunner({ ...config(), heartbeatIntervalMs: 200, drainTimeoutMs: 3000, ...opts.extraConfig } as ReturnType<typeof config>,
    opts.log ?? pino({ level: 'silent' }), opts.deps)
  let runner = await start()
  const enc = new TextEncoder()
  const dec = new TextDecoder()

  const h: RunnerHarness = {
    dir, nats, nc, runner, nodeId, key, canaryDir, listRoot, journal,
    digestOf: (packId) => {
      // Packs a test writes after the start are read from disk.
      const p = loaded.packs.find((x) => x.id === packId) ?? loadPacks(packDirs).packs.find((x) => x.id === packId)
      if (!p) throw new Error(`no pack ${packId}`)
      return p.digest
    },
    writ: (action, args, over = {}) => {
      const now = Date.now()
      const pack = action.split('.')[0] as string
      return {
        v: WRIT_VERSION, run_id: `run_${randomBytes(8).toString('hex')}`, node_id: nodeId, node_name: `${nodeId}.example`,
        action, pack, pack_digest: over.pack_digest ?? h.digestOf(pack), args: args as Writ['args'], reason: 'test', requester: { id: 'agent-test', kind: 'agent' },
        approvals: [], request_hash: 'e'.repeat(64), options: {}, issued_at: new Date(now).toISOString(), expires_at: new Date(now + 60_000).toISOString(), nonce: newNonce(),
        binding_salt: newBindingSalt(), ...over,
      }
    },
    send: async (signed) => {
      const msg = await nc.request(subjects.run(nodeId), enc.encode(JSON.stringify(signed)), { timeout: 5000 })
      return WritAckSchema.parse(JSON.parse(dec.decode(msg.data)))
    },
    run: async (action, args, over) => {
      const writ = h.writ(action, args, over)
      const chunks: string[] = []
      const out = nc.subscribe(subjects.output(nodeId, writ.run_id), { callback: (_e, m) => { chunks.push((JSON.parse(dec.decode(m.data)) as { data: string }).data) } })
      const res = nc.subscribe(subjects.result(nodeId, writ.run_id), { max: 1 })
      const ack = await h.send(signWrit(writ, key))
      if (!ack.accepted) { res.unsubscribe(); out.unsubscribe(); return { ack, chunks } }
      for await (const m of res) {
        out.unsubscribe()
        return { ack, result: RunResultSchema.parse(JSON.parse(dec.decode(m.data))), chunks }
      }
      throw new Error('result subscription closed')
    },
    restartRunner: async () => { await h.runner.drain(); runner = await start(); h.runner = runner },
    stop: async () => {
      await h.runner.close()
      await nc.close()
      if (!opts.nats) await nats.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return h
}
