/**
 * `writ dev`: the embedded default. NATS (started if none with JetStream is
 * reachable), a control plane, and a node-runner for this host with the stock
 * packs and any pack folders the user adds (`--packs DIR`) — with a generated
 * dev config, keys and tokens under `.writ/`, and one real action run end to
 * end so the user sees writ work.
 */
import { createHash, randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { hostname } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { stringify as toYaml } from 'yaml'
import { loadPacks } from '@writ/packs'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { buildApp, createLogger } from '../http/app.js'
import { parseConfig, type ConfigInput } from '../config.js'
import { generateToken, hashToken } from '../auth/index.js'
import { terminalLine } from './terminal-text.js'

export class DevStackError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'DevStackError' }
}

export interface DevStackOptions {
  /** Where config, keys, tokens, logs and NATS data live (default `.writ` in the working directory). */
  stateDir?: string
  /** Preferred HTTP port (default 8480; a free one if taken). */
  port?: number
  /** NATS URL to use instead of finding or starting one. */
  natsUrl?: string
  /** Start a private nats-server under the state dir even if one is reachable. */
  startNats?: boolean
  /** Pack folders (a pack, or a folder of packs) served beside the stock packs, by the catalog and the runner alike. */
  packDirs?: readonly string[]
  /** Let the dev runner run shell actions (its --allow-shell-packs). */
  allowShellPacks?: boolean
  out?: (line: string) => void
}

export interface DevStack {
  url: string
  natsUrl: string
  agentToken: string
  operatorToken: string
  nodeName: string
  /** The dev runner's node id: a stable UUID, as a Nomad node id is. */
  nodeId: string
  /** A one-time link that signs the dev operator in to the portal. */
  signInLink: string
  /** `debugging.loadavg` run through the whole path at start-up. */
  firstRun: { status: string, stdout: string }
  /** The ids of the packs the added folders brought in. */
  addedPacks: string[]
  stop(): Promise<void>
}

/**
 * A stable UUID for this host's dev runner, derived from the machine id and
 * the host name: the stock nomad.* node actions take a Nomad node id (a UUID),
 * and a runner acts only for its own, so the dev runner needs one that stays
 * the same from one `writ dev` to the next.
 */
export function devNodeId(): string {
  let machine = ''
  try { machine = readFileSync('/etc/machine-id', 'utf8').trim() } catch { /* no machine id: the host name alone */ }
  const h = createHash('sha256').update(`writ-dev-node\0${machine}\0${hostname()}`).digest('hex')
  // RFC 9562 version 8 (name-based, our own hash) with the RFC variant bits.
  const variant = ((Number.parseInt(h.charAt(16), 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

const STOCK_PACKS = fileURLToPath(new URL('../../../packs/stock', import.meta.url))

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer()
    srv.once('error', () => resolveFree(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolveFree(true)))
  })
}

async function freePort(preferred: number): Promise<number> {
  if (preferred > 0 && await portFree(preferred)) return preferred
  return new Promise((resolvePort) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address()
      srv.close(() => resolvePort(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** True when a NATS server with JetStream answers at `url`. */
async function natsWithJetStream(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 1000, maxReconnectAttempts: 0 })
    const js = nc.info?.jetstream === true
    await nc.close()
    return js
  } catch { return false }
}

function isExecutable(file: string): boolean {
  try { accessSync(file, constants.X_OK); return true } catch { return false }
}

async function startNats(stateDir: string, out: (l: string) => void): Promise<{ url: string, proc?: ChildProcess }> {
  const bin = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => join(d, 'nats-server')).find((f) => isExecutable(f))
  if (!bin) {
    throw new DevStackError('no NATS server with JetStream is reachable and the nats-server binary is not installed: install Debian\'s package with `apt-get install nats-server` (or set WRIT_NATS_URL)')
  }
  const port = await freePort(4222)
  const storeDir = join(stateDir, 'nats')
  mkdirSync(storeDir, { recursive: true })
  const log = createWriteStream(join(stateDir, 'nats.log'), { flags: 'a' })
  const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout?.pipe(log)
  proc.stderr?.pipe(log)
  const url = `nats://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new DevStackError(`nats-server exited with code ${proc.exitCode}; see ${join(stateDir, 'nats.log')}`)
    if (await natsWithJetStream(url)) { out(`started nats-server -js on ${url} (data in ${storeDir})`); return { url, proc } }
    await new Promise((r) => setTimeout(r, 100))
  }
  proc.kill()
  throw new DevStackError(`nats-server did not answer on ${url} within 10 s; see ${join(stateDir, 'nats.log')}`)
}

function readEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {}
  const out: Record<string, string> = {}
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) out[m[1] as string] = m[2] as string
  }
  return out
}

/**
 * Checks the added pack folders before anything starts: each must exist and
 * bring at least one pack; what does not load (an action, a pack whose id
 * the stock packs already use) is printed, as the runner and the control
 * plane would only log it. Returns the ids the folders add.
 */
function addedPacks(dirs: readonly string[], out: (l: string) => void): string[] {
  const stock = new Set(loadPacks([STOCK_PACKS]).packs.map((p) => p.id))
  const all = loadPacks([STOCK_PACKS, ...dirs])
  for (const dir of dirs) {
    const own = loadPacks([dir])
    if (own.packs.length === 0) throw new DevStackError(`--packs ${dir}: ${own.errors[0] ? `${own.errors[0].file}: ${own.errors[0].message}` : 'no pack.yaml in it or in its sub-folders'}`)
  }
  for (const e of all.errors) out(`pack load error: ${e.file}${e.field ? `: ${e.field}` : ''}: ${e.message}`)
  return all.packs.map((p) => p.id).filter((id) => !stock.has(id))
}

function runnerCli(): string {
  // The runner is started as its own process (the daemons never import each other).
  const entry = createRequire(import.meta.url).resolve('@writ/node-runner')
  return join(dirname(entry), 'cli.js')
}

export async function startDevStack(opts: DevStackOptions = {}): Promise<DevStack> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`))
  const stateDir = resolve(opts.stateDir ?? '.writ')
  const extraPacks = (opts.packDirs ?? []).map((d) => resolve(d))
  const added = addedPacks(extraPacks, out)
  const packDirs = [STOCK_PACKS, ...extraPacks]
  mkdirSync(stateDir, { recursive: true, mode: 0o700 })

  let natsUrl = opts.natsUrl ?? process.env.WRIT_NATS_URL ?? 'nats://127.0.0.1:4222'
  let natsProc: ChildProcess | undefined
  if (opts.startNats) ({ url: natsUrl, proc: natsProc } = await startNats(stateDir, out))
  else if (await natsWithJetStream(natsUrl)) out(`using the NATS server with JetStream at ${natsUrl}`)
  else if (opts.natsUrl ?? process.env.WRIT_NATS_URL) throw new DevStackError(`no NATS server with JetStream answers at ${natsUrl} (WRIT_NATS_URL)`)
  else ({ url: natsUrl, proc: natsProc } = await startNats(stateDir, out))

  const keyFile = join(stateDir, 'signing-key.pem')
  const pubFile = join(stateDir, 'signing-key.pub.pem')
  if (!existsSync(keyFile) || !existsSync(pubFile)) {
    const kp = generateSigningKeyPair()
    writeFileSync(keyFile, kp.privatePem, { mode: 0o600 })
    writeFileSync(pubFile, kp.publicPem)
    out(`generated signing key ${kp.keyId}`)
  }
  const sessionKeyFile = join(stateDir, 'portal-session.key')
  if (!existsSync(sessionKeyFile)) writeFileSync(sessionKeyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  const envFile = join(stateDir, 'dev.env')
  const prior = readEnvFile(envFile)
  const agentToken = prior.WRIT_AGENT_TOKEN ?? generateToken('agent')
  const operatorToken = prior.WRIT_OPERATOR_TOKEN ?? generateToken('operator')
  const port = await freePort(opts.port ?? 8480)
  const url = `http://127.0.0.1:${port}`
  const nodeName = hostname()
  const nodeId = devNodeId()

  const raw: ConfigInput = {
    listen: { host: '127.0.0.1', port },
    public_url: url,
    nats: { servers: [natsUrl], name: 'writ-dev-control-plane' },
    jetstream: { replicas: 1 },
    packs: { dirs: packDirs },
    signing: { key_file: keyFile },
    principals: [
      { id: 'dev-agent', kind: 'agent', token_sha256: hashToken(agentToken), groups: ['agents'] },
      { id: 'dev-operator', kind: 'operator', token_sha256: hashToken(operatorToken), groups: ['operators'] },
      // MCP clients that connect through OAuth act as this agent once dev-operator consents in the portal.
      { id: 'dev-oauth-agent', kind: 'agent', groups: ['agents'], oauth: { people: ['dev-operator'] } },
    ],
    oauth: { dynamic_registration: true },
    policy: {
      rules: [
        { name: 'read-only actions run at once', match: { max_risk: 'low' }, decision: 'allow' },
        { name: 'changes wait for an operator', match: { risk: ['medium', 'high', 'critical'] }, decision: 'require_approval', approver_groups: ['operators'], quorum: 1, ttl: '15m' },
      ],
    },
    portal: { session_key_file: sessionKeyFile },
    log: { level: 'warn' },
    // Node attributes for policy come from Nomad when one is configured; otherwise they are unknown.
    ...(process.env.NOMAD_ADDR ? { nomad: { addr: process.env.NOMAD_ADDR, ...(process.env.NOMAD_TOKEN ? { token: process.env.NOMAD_TOKEN } : {}), ...(process.env.NOMAD_CACERT ? { ca_cert: process.env.NOMAD_CACERT } : {}) } } : {}),
  }
  writeFileSync(join(stateDir, 'dev.yaml'), `# Written by \`writ dev\`; regenerated on every start.\n${toYaml(raw)}`)
  const config = parseConfig(raw, 'dev config')
  const logger = createLogger(config, createWriteStream(join(stateDir, 'control-plane.log'), { flags: 'a' }))
  // No Slack webhook in dev: approval messages are printed here instead, escaped (they carry an agent's reason).
  const app = await buildApp(config, { logger, print: (line) => out(`[slack] ${terminalLine(line)}`) })
  await app.listen({ host: '127.0.0.1', port })

  const runnerLog = createWriteStream(join(stateDir, 'runner.log'), { flags: 'a' })
  const runner = spawn(process.execPath, [runnerCli(), 'run', '--nats-url', natsUrl, '--node-id', nodeId, '--node-name', nodeName, ...packDirs.flatMap((d) => ['--packs', d]),
    '--trusted-keys', pubFile, '--journal', join(stateDir, 'runner-journal.jsonl'), '--heartbeat-interval-ms', '2000', '--nomad-addr', process.env.NOMAD_ADDR || 'http://127.0.0.1:4646',
    ...(opts.allowShellPacks ? ['--allow-shell-packs'] : [])],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  runner.stdout?.pipe(runnerLog)
  runner.stderr?.pipe(runnerLog)

  const stop = async (): Promise<void> => {
    if (runner.exitCode === null) {
      const gone = new Promise((r) => runner.once('exit', r))
      runner.kill('SIGTERM')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
    }
    await app.close()
    if (natsProc && natsProc.exitCode === null) {
      const gone = new Promise((r) => natsProc?.once('exit', r))
      natsProc.kill('SIGTERM')
      await gone
    }
  }

  const auth = { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' }
  try {
    let online = false
    for (let i = 0; i < 100 && !online; i++) {
      if (runner.exitCode !== null) throw new DevStackError(`the node-runner exited with code ${runner.exitCode}; see ${join(stateDir, 'runner.log')}`)
      const res = await fetch(`${url}/v1/nodes`, { headers: auth })
      const body = await res.json() as { nodes?: Array<{ name: string, online: boolean }> }
      online = body.nodes?.some((n) => n.name === nodeName && n.online) ?? false
      if (!online) await new Promise((r) => setTimeout(r, 100))
    }
    if (!online) throw new DevStackError(`the node-runner for ${nodeName} did not come online within 10 s; see ${join(stateDir, 'runner.log')}`)

    const res = await fetch(`${url}/v1/runs`, { method: 'POST', headers: auth, body: JSON.stringify({ action: 'debugging.loadavg', node: nodeName, args: {}, reason: 'writ dev: first run', wait: 15 }) })
    const run = await res.json() as { status?: string, result?: { stdout?: string }, error?: { message: string } }
    const firstRun = { status: run.status ?? `HTTP ${res.status}: ${run.error?.message ?? ''}`, stdout: run.result?.stdout ?? '' }

    const signInLink = app.portal.signInUrl(await app.portal.links.mint('dev-operator'))
    writeFileSync(envFile, `WRIT_URL=${url}\nWRIT_AGENT_TOKEN=${agentToken}\nWRIT_OPERATOR_TOKEN=${operatorToken}\nWRIT_NATS_URL=${natsUrl}\nWRIT_AUDIT_TRUSTED_KEYS=${pubFile}\n`, { mode: 0o600 })
    return { url, natsUrl, agentToken, operatorToken, nodeName, nodeId, firstRun, signInLink, addedPacks: added, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
