/**
 * The real path for one pack's cases: a node-runner (this package's own
 * daemon, in-process) on the private nats-server, trusting only an ephemeral
 * key made for this run. A case becomes a signed writ sent the way a control
 * plane sends it; what comes back is everything the runner left behind — the
 * ack, the live output, the result as published, every other message it put
 * on NATS, its journal and its log — so a canary can be looked for in all of it.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { pino } from 'pino'
import { PackCatalog, type LoadedAction } from '@writ/packs'
import {
  RunResultSchema, WRIT_VERSION, WritAckSchema, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects,
  type RunResult, type Writ, type WritAck,
} from '@writ/packs/protocol'
import { loadRunnerConfig } from '../runner-config.js'
import { startNodeRunner, type NodeRunner } from '../node-runner.js'

/** Everything one run left behind, as text where a canary could hide. */
export interface RunObservation {
  ack: WritAck
  result?: RunResult
  /** The result message exactly as the runner published it: the run record. */
  record?: string
  /** Live output chunks, in order. */
  chunks: string[]
  /** Every other message on the server while the run lasted (heartbeats, replies, JetStream traffic), by subject. */
  wire: Array<{ subject: string, data: string }>
  /** The runner's journal files, whole, when the result arrived. */
  journal: string
  /** The runner's log lines written during the run. */
  log: string
}

export interface RunnerUnderTestOptions {
  natsUrl: string
  /** This pack's own folder under the run's temp folder (journal, keys). */
  workDir: string
  packDir: string
  /** The case file's environment, as the runner's host would have it: the runner reads its own settings from it (NOMAD_ADDR, NODE_ID, …). */
  runnerEnv: Record<string, string>
  /** Names commands inherit from the runner's environment (the operator's `--inherit-env`). */
  inheritEnv: string[]
  allowShellPacks: boolean
}

export interface RunnerUnderTest {
  readonly nodeId: string
  /** The action as this runner loaded it, or undefined. */
  action(id: string): LoadedAction | undefined
  /** Signs a writ for the action and waits for its result; `env` is the runner's environment for this run. */
  run(action: string, args: Record<string, unknown>, env: NodeJS.ProcessEnv, reason: string): Promise<RunObservation>
  /** Drains the runner; returns its journal, whole, for a last look. */
  stop(): Promise<string>
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The journal and its rotated files, concatenated. */
function readJournal(journal: string, dir: string): string {
  const base = journal.slice(dir.length + 1)
  return readdirSync(dir, { withFileTypes: true }).filter((f) => f.isFile() && f.name.startsWith(base)).map((f) => readFileSync(join(dir, f.name), 'utf8')).join('\n')
}

export async function startRunnerUnderTest(opts: RunnerUnderTestOptions): Promise<RunnerUnderTest> {
  mkdirSync(opts.workDir, { recursive: true })
  const keys = generateSigningKeyPair()
  const trusted = join(opts.workDir, 'trusted.pem')
  writeFileSync(trusted, keys.publicPem)
  const key = loadSigningKey(keys.privatePem)
  const journal = join(opts.workDir, 'runner-journal.jsonl')
  const env0 = opts.runnerEnv
  // A node id the case file gives (NODE_ID under Nomad) is the runner's; else one made up for the run.
  const givesNodeId = ['WRIT_NODE_ID', 'NODE_ID', 'NOMAD_NODE_ID'].some((k) => env0[k] !== undefined)
  // The host's environment first; what the run itself needs (its NATS, its key, its journal) last, so a case file cannot redirect it.
  const config = {
    ...loadRunnerConfig({}, {
      ...(givesNodeId ? {} : { WRIT_NODE_ID: `packtest-${randomBytes(4).toString('hex')}` }), WRIT_NODE_NAME: 'packs-test', ...env0,
      WRIT_NATS_URL: opts.natsUrl, WRIT_PACKS: opts.packDir, WRIT_TRUSTED_KEYS: trusted, WRIT_JOURNAL: journal,
    }),
    inheritEnv: opts.inheritEnv, allowShellPacks: opts.allowShellPacks, heartbeatIntervalMs: 2000, drainTimeoutMs: 10_000, logLevel: 'info' as const,
  }
  let logText: string[] = []
  const log = pino({ level: 'info', name: 'writ-node-runner' }, { write: (line: string) => { logText.push(line) } })
  let env: NodeJS.ProcessEnv = {}
  const runner: NodeRunner = await startNodeRunner(config, log, { environment: () => env })
  const nc: NatsConnection = await connect({ servers: opts.natsUrl, name: 'writ-packs-test' })
  try {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  } catch (e) {
    // A stream left by an earlier pack of the same run is the same stream.
    if (!/already in use|exists/i.test((e as Error).message)) throw e
  }

  const writFor = (action: LoadedAction, args: Record<string, unknown>, reason: string): Writ => {
    const now = Date.now()
    const runId = `run_${randomBytes(8).toString('hex')}`
    return {
      v: WRIT_VERSION, run_id: runId, node_id: config.nodeId, node_name: config.nodeName, action: action.id, pack: action.pack,
      pack_digest: runner.catalog.packs.find((p) => p.id === action.pack)?.digest ?? '0'.repeat(64),
      args: args as Writ['args'], reason, requester: { id: 'packs-test', kind: 'system' }, approvals: [],
      // No control plane, so no audit chain: the hash stands for the request this run answers.
      request_hash: createHash('sha256').update(`packs-test:${runId}`).digest('hex'),
      options: {}, issued_at: new Date(now).toISOString(), expires_at: new Date(now + 600_000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt(),
    }
  }

  return {
    nodeId: config.nodeId,
    action: (id) => { const hit = runner.catalog.lookup(id); return hit.ok ? hit.action : undefined },
    run: async (actionId, args, runEnv, reason) => {
      const hit = runner.catalog.lookup(actionId)
      if (!hit.ok) throw new Error(`the runner has no action ${actionId}`)
      const action = hit.action
      env = runEnv
      logText = []
      const writ = writFor(action, args, reason)
      const chunks: string[] = []
      const wire: RunObservation['wire'] = []
      const runSubject = subjects.run(config.nodeId)
      const all: Subscription = nc.subscribe('>', {
        callback: (_e, m) => { if (m.subject !== runSubject) wire.push({ subject: m.subject, data: dec.decode(m.data) }) },
      })
      const out = nc.subscribe(subjects.output(config.nodeId, writ.run_id), {
        callback: (_e, m) => { try { chunks.push((JSON.parse(dec.decode(m.data)) as { data: string }).data) } catch { /* not a chunk */ } },
      })
      const res = nc.subscribe(subjects.result(config.nodeId, writ.run_id), { max: 1 })
      await nc.flush()
      const finish = async (obs: Omit<RunObservation, 'chunks' | 'wire' | 'journal' | 'log'>): Promise<RunObservation> => {
        await nc.flush()
        all.unsubscribe(); out.unsubscribe(); res.unsubscribe()
        return { ...obs, chunks, wire, journal: existsSync(journal) ? readJournal(journal, opts.workDir) : '', log: logText.join('') }
      }
      const reply = await nc.request(runSubject, enc.encode(JSON.stringify(signWrit(writ, key))), { timeout: 10_000 })
      const ack = WritAckSchema.parse(JSON.parse(dec.decode(reply.data)))
      const waitMs = PackCatalog.limits(action).timeoutMs + 30_000
      const timer = setTimeout(() => res.unsubscribe(), waitMs)
      for await (const m of res) {
        clearTimeout(timer)
        const record = dec.decode(m.data)
        return finish({ ack, result: RunResultSchema.parse(JSON.parse(record)), record })
      }
      clearTimeout(timer)
      // A writ refused before it was verified has no result; anything else that came back with none is a lost run.
      return finish({ ack })
    },
    stop: async () => {
      await runner.drain()
      await nc.drain().catch(() => nc.close())
      return existsSync(journal) ? readJournal(journal, opts.workDir) : ''
    },
  }
}
