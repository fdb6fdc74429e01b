/**
 * Runner configuration from a YAML/JSON file, then environment, then flags
 * (later wins). Under Nomad the node identity comes from NOMAD_* / NODE_ID.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { isCodeEnvName } from '@writ/packs'
import { NODE_ID_RE } from '@writ/packs/protocol'
import type { NomadTarget } from './clients/nomad-client.js'
import { MULTIPATHD_SOCKETS } from './multipathd-socket.js'

export const RunnerConfigSchema = z.object({
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** NATS credentials file (JWT + nkey seed), optional. */
  natsCreds: z.string().optional(),
  /** PEM file of the CA that signed the NATS servers' certificates; with it the runner speaks TLS only, verified against it. */
  natsCa: z.string().optional(),
  /** The name the NATS servers' certificate is verified against (servers are addressed by IP under Nomad). */
  natsTlsServerName: z.string().min(1).max(253).optional(),
  natsUser: z.string().optional(),
  natsPass: z.string().optional(),
  nodeId: z.string().regex(NODE_ID_RE, 'node id must be letters, digits, "-" or "_" (it is a NATS subject token)'),
  nodeName: z.string().min(1).max(256),
  packDirs: z.array(z.string()).min(1, 'at least one pack directory is needed'),
  /** PEM file(s) holding the control plane's trusted Ed25519 public keys. */
  trustedKeys: z.array(z.string()).min(1, 'at least one trusted public key file is needed'),
  journal: z.string().default('/var/lib/writ/runner-journal.jsonl'),
  /** Nomad's own default; under Nomad the job sets the Task API socket, or https with `nomadCaCert`. */
  nomadAddr: z.string().default('http://127.0.0.1:4646'),
  nomadToken: z.string().optional(),
  /** PEM file of the CA that signed the agent's certificate (NOMAD_CACERT); https only. */
  nomadCaCert: z.string().optional(),
  /** Client certificate and key for an agent with verify_https_client (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY). */
  nomadClientCert: z.string().optional(),
  nomadClientKey: z.string().optional(),
  /** Name the agent's certificate carries when it is not the address's host (NOMAD_TLS_SERVER_NAME), e.g. client.global.nomad. */
  nomadTlsServerName: z.string().optional(),
  /**
   * The Nomad client's data_dir on this host, for list roots under `{{ runner.nomad_data_dir }}`
   * (storage.csi_volume_ls lists its client/csi). HashiCorp's Linux packages use /opt/nomad/data.
   */
  nomadDataDir: z.string().max(1024).refine((d) => d.startsWith('/') && !d.split('/').includes('..') && !d.includes('{{'), 'must be an absolute path without ".." segments').default('/opt/nomad/data'),
  /** Where multipathd may listen; `@` marks an abstract socket. */
  multipathdSockets: z.array(z.string().min(2)).min(1).default([...MULTIPATHD_SOCKETS]),
  dockerSocket: z.string().default('/var/run/docker.sock'),
  /** A file dmesg reads the kernel log from instead of /dev/kmsg (`kernel-log-source.ts`). */
  kernelLogFile: z.string().min(1).optional(),
  heartbeatIntervalMs: z.number().int().min(50).max(60_000).default(5000),
  /** How long SIGTERM waits for in-flight runs before aborting them. */
  drainTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
  maxConcurrentRuns: z.number().int().min(1).max(1024).default(16),
  /** Clock skew tolerated on writ issue/expiry times. */
  clockSkewMs: z.number().int().min(0).max(300_000).default(30_000),
  /** Writs valid for longer than this are refused; it bounds how long the journal must remember a run id. */
  maxWritLifetimeMs: z.number().int().min(1000).max(7 * 86_400_000).default(3_600_000),
  /** The journal file is rotated (renamed `<journal>.<seq>`, kept as an audit witness) at this many entries. */
  journalRotateEntries: z.number().int().min(100).max(10_000_000).default(100_000),
  /** Rotated journal files kept; older ones are removed. */
  journalKeepRotated: z.number().int().min(0).max(10_000).default(10),
  /**
   * Names of variables in the runner's own environment that every command it runs gets too
   * (`REDISCLI_AUTH`, `PGPASSWORD`, …): packs read their credentials from the host, and the
   * command environment is otherwise scrubbed. A variable that makes a program load or run
   * other code (`PATH`, `LD_PRELOAD`, …) is refused: the host's copy must not change what runs.
   */
  inheritEnv: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name (letters, digits, "_")')).default([]),
  /** Off by default: actions that run a shell or pack script are refused. */
  allowShellPacks: z.boolean().default(false),
  nomad: z.object({
    datacenter: z.string().optional(),
    node_pool: z.string().optional(),
    node_class: z.string().optional(),
    region: z.string().optional(),
  }).default({}),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `HOST:PORT` for /metrics, /healthz, /readyz; unset = no HTTP listener. */
  metricsListen: z.string().optional(),
  /** The signed approver registry (`writ approvers export`); with it, risky actions need passkey-signed approvals. */
  approversRegistry: z.string().optional(),
  /** PEM file(s) of the approvers public key(s) that sign the registry (never a dispatch key). */
  approversKeys: z.array(z.string()).default([]),
  /** How often the registry file is checked for a new version. */
  approversReloadMs: z.number().int().min(50).max(600_000).default(5000),
}).strict().refine((c) => (c.approversRegistry === undefined) === (c.approversKeys.length === 0), {
  message: 'set both the approver registry and its approvers key (or neither)', path: ['approversRegistry'],
})
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>
export type RunnerConfigInput = z.input<typeof RunnerConfigSchema>

export class RunnerConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'RunnerConfigError' }
}

const FLAG_KEYS: Record<string, keyof RunnerConfigInput> = {
  'nats-url': 'natsUrl', 'nats-creds': 'natsCreds', 'nats-ca': 'natsCa', 'nats-tls-server-name': 'natsTlsServerName', 'node-id': 'nodeId', 'node-name': 'nodeName',
  packs: 'packDirs', 'trusted-keys': 'trustedKeys', journal: 'journal', 'nomad-addr': 'nomadAddr',
  'nomad-token': 'nomadToken', 'nomad-cacert': 'nomadCaCert', 'nomad-client-cert': 'nomadClientCert', 'nomad-client-key': 'nomadClientKey',
  'nomad-tls-server-name': 'nomadTlsServerName', 'nomad-data-dir': 'nomadDataDir', 'multipathd-socket': 'multipathdSockets', 'docker-socket': 'dockerSocket', 'heartbeat-interval-ms': 'heartbeatIntervalMs',
  'drain-timeout-ms': 'drainTimeoutMs', 'max-concurrent-runs': 'maxConcurrentRuns', 'log-level': 'logLevel',
  'allow-shell-packs': 'allowShellPacks', 'metrics-listen': 'metricsListen', 'kernel-log-file': 'kernelLogFile', 'max-writ-lifetime-ms': 'maxWritLifetimeMs',
  'journal-rotate-entries': 'journalRotateEntries', 'journal-keep-rotated': 'journalKeepRotated',
  'approvers-registry': 'approversRegistry', 'approvers-key': 'approversKeys', 'approvers-reload-ms': 'approversReloadMs',
  'inherit-env': 'inheritEnv',
}
const LIST_KEYS = new Set(['packDirs', 'trustedKeys', 'multipathdSockets', 'approversKeys', 'inheritEnv'])
const NUMBER_KEYS = new Set(['heartbeatIntervalMs', 'drainTimeoutMs', 'maxConcurrentRuns', 'maxWritLifetimeMs', 'journalRotateEntries', 'journalKeepRotated', 'approversReloadMs'])

/** Turns a raw Nomad node name or hostname into a subject-safe node id. */
export function nodeIdFrom(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 128) || 'node'
}

/**
 * Builds the config: `--config FILE` (YAML), env (`WRIT_*`, `NOMAD_*`, `NODE_ID`), flags.
 * Throws RunnerConfigError naming the setting at fault.
 */
export function loadRunnerConfig(flags: Record<string, string | string[] | boolean>, env: NodeJS.ProcessEnv = process.env): RunnerConfig {
  let fromFile: Record<string, unknown> = {}
  const file = typeof flags.config === 'string' ? flags.config : env.WRIT_RUNNER_CONFIG
  if (file) {
    try { fromFile = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown> } catch (e) {
      throw new RunnerConfigError(`cannot read config file ${file}: ${(e as Error).message}`, { cause: e })
    }
  }
  const fromEnv: Record<string, unknown> = {}
  const set = (k: keyof RunnerConfigInput, v: string | undefined): void => { if (v !== undefined && v !== '') fromEnv[k] = v }
  set('natsUrl', env.WRIT_NATS_URL)
  set('natsCreds', env.WRIT_NATS_CREDS)
  set('natsCa', env.WRIT_NATS_CA)
  set('natsTlsServerName', env.WRIT_NATS_TLS_SERVER_NAME)
  set('natsUser', env.WRIT_NATS_USER)
  set('natsPass', env.WRIT_NATS_PASS)
  set('nodeId', env.WRIT_NODE_ID ?? env.NODE_ID ?? env.NOMAD_NODE_ID)
  set('nodeName', env.WRIT_NODE_NAME ?? env.NODE_NAME ?? env.NOMAD_NODE_NAME)
  set('journal', env.WRIT_JOURNAL)
  set('nomadAddr', env.NOMAD_ADDR)
  set('nomadToken', env.NOMAD_TOKEN)
  set('nomadCaCert', env.NOMAD_CACERT)
  set('nomadClientCert', env.NOMAD_CLIENT_CERT)
  set('nomadClientKey', env.NOMAD_CLIENT_KEY)
  set('nomadTlsServerName', env.NOMAD_TLS_SERVER_NAME)
  set('nomadDataDir', env.WRIT_NOMAD_DATA_DIR)
  if (env.WRIT_MULTIPATHD_SOCKETS) fromEnv.multipathdSockets = env.WRIT_MULTIPATHD_SOCKETS.split(',').map((x) => x.trim()).filter(Boolean)
  set('dockerSocket', env.WRIT_DOCKER_SOCKET)
  set('kernelLogFile', env.WRIT_KERNEL_LOG_FILE)
  if (env.WRIT_INHERIT_ENV) fromEnv.inheritEnv = env.WRIT_INHERIT_ENV.split(',').map((x) => x.trim()).filter(Boolean)
  set('logLevel', env.WRIT_LOG_LEVEL)
  if (env.WRIT_PACKS) fromEnv.packDirs = env.WRIT_PACKS.split(':').filter(Boolean)
  if (env.WRIT_TRUSTED_KEYS) fromEnv.trustedKeys = env.WRIT_TRUSTED_KEYS.split(':').filter(Boolean)
  set('approversRegistry', env.WRIT_APPROVERS_REGISTRY)
  if (env.WRIT_APPROVERS_KEYS) fromEnv.approversKeys = env.WRIT_APPROVERS_KEYS.split(':').filter(Boolean)
  const nomad: Record<string, string> = {}
  if (env.NOMAD_DC) nomad.datacenter = env.NOMAD_DC
  if (env.NOMAD_REGION) nomad.region = env.NOMAD_REGION
  if (env.WRIT_NODE_POOL) nomad.node_pool = env.WRIT_NODE_POOL
  if (env.WRIT_NODE_CLASS) nomad.node_class = env.WRIT_NODE_CLASS

  const fromFlags: Record<string, unknown> = {}
  for (const [flag, value] of Object.entries(flags)) {
    if (flag === 'config' || flag === '_') continue
    const key = FLAG_KEYS[flag]
    if (!key) throw new RunnerConfigError(`unknown flag --${flag}`)
    if (LIST_KEYS.has(key)) fromFlags[key] = Array.isArray(value) ? value : [String(value)]
    else if (NUMBER_KEYS.has(key)) fromFlags[key] = Number(Array.isArray(value) ? value.at(-1) : value)
    else if (key === 'allowShellPacks') fromFlags[key] = value === true || value === 'true'
    else fromFlags[key] = Array.isArray(value) ? value.at(-1) : value
  }
  const merged: Record<string, unknown> = { ...fromFile, ...fromEnv, ...fromFlags }
  merged.nomad = { ...(fromFile.nomad as object | undefined), ...nomad }
  if (merged.nodeName === undefined) merged.nodeName = hostname()
  if (merged.nodeId === undefined) merged.nodeId = nodeIdFrom(String(merged.nodeName))
  const parsed = RunnerConfigSchema.safeParse(merged)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    const where = first?.path.join('.') || '(root)'
    throw new RunnerConfigError(`invalid runner setting "${where}": ${first?.message ?? 'invalid'}`)
  }
  const cfg = parsed.data
  const loader = cfg.inheritEnv.find(isCodeEnvName)
  if (loader !== undefined) throw new RunnerConfigError(`WRIT_INHERIT_ENV / --inherit-env: ${loader} makes a program load or run other code, so commands never inherit it`)
  checkNomadConnection(cfg)
  if (cfg.natsCa !== undefined) readSettingPem('WRIT_NATS_CA / --nats-ca', cfg.natsCa, CERT_PEM)
  return {
    ...cfg, ...(cfg.natsCa !== undefined ? { natsCa: resolve(cfg.natsCa) } : {}), nomadDataDir: resolve(cfg.nomadDataDir), packDirs: cfg.packDirs.map((d) => resolve(d)), trustedKeys: cfg.trustedKeys.map((k) => resolve(k)), journal: resolve(cfg.journal),
    ...(cfg.kernelLogFile ? { kernelLogFile: resolve(cfg.kernelLogFile) } : {}),
    ...(cfg.approversRegistry ? { approversRegistry: resolve(cfg.approversRegistry) } : {}), approversKeys: cfg.approversKeys.map((k) => resolve(k)),
  }
}

/** The settings that decide how the runner reaches Nomad, named the way an operator sets them. */
const NOMAD_SETTING = {
  nomadAddr: 'NOMAD_ADDR / --nomad-addr',
  nomadCaCert: 'NOMAD_CACERT / --nomad-cacert',
  nomadClientCert: 'NOMAD_CLIENT_CERT / --nomad-client-cert',
  nomadClientKey: 'NOMAD_CLIENT_KEY / --nomad-client-key',
} as const

function readPem(setting: keyof typeof NOMAD_SETTING, path: string, want: RegExp): string {
  return readSettingPem(NOMAD_SETTING[setting], path, want)
}

/** Reads a PEM file a setting names; the error names the setting and says what is wrong. */
function readSettingPem(setting: string, path: string, want: RegExp): string {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (e) {
    throw new RunnerConfigError(`${setting}: cannot read ${path}: ${(e as Error).message}`, { cause: e })
  }
  if (!want.test(text)) throw new RunnerConfigError(`${setting}: ${path} does not hold a PEM ${want === CERT_PEM ? 'certificate' : 'private key'}`)
  return text
}
const CERT_PEM = /-----BEGIN CERTIFICATE-----/
const KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/

/** The TLS settings, named the way an operator sets them. */
const NOMAD_TLS_SETTING = {
  nomadCaCert: NOMAD_SETTING.nomadCaCert,
  nomadClientCert: NOMAD_SETTING.nomadClientCert,
  nomadClientKey: NOMAD_SETTING.nomadClientKey,
  nomadTlsServerName: 'NOMAD_TLS_SERVER_NAME / --nomad-tls-server-name',
} as const

const nomadScheme = (addr: string): string | undefined => /^([a-z]+):\/\//.exec(addr)?.[1]

/**
 * The TLS settings a `unix://` address (the Task API socket) leaves unused.
 * A raw_exec task inherits the Nomad agent's environment, and the packaged
 * agent unit loads /etc/nomad.d/nomad.env, where clusters keep NOMAD_CACERT
 * and friends for the CLI: they reach the runner without anyone choosing
 * them, so on the socket they are ignored (and named once in the log)
 * rather than stopping the runner.
 */
export function ignoredNomadTlsSettings(cfg: RunnerConfig): string[] {
  if (nomadScheme(cfg.nomadAddr) !== 'unix') return []
  return (Object.keys(NOMAD_TLS_SETTING) as Array<keyof typeof NOMAD_TLS_SETTING>).filter((k) => cfg[k] !== undefined).map((k) => NOMAD_TLS_SETTING[k])
}

/**
 * Checks the Nomad address and TLS settings together, so a CA given for a
 * plain-http address (TLS silently not used) or half a client certificate
 * stops the runner at boot instead of failing the first Nomad action. On the
 * Task API socket there is no TLS to configure: the settings are ignored
 * (ignoredNomadTlsSettings), never read.
 */
function checkNomadConnection(cfg: RunnerConfig): void {
  const addr = cfg.nomadAddr
  const scheme = nomadScheme(addr)
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'unix') {
    throw new RunnerConfigError(`${NOMAD_SETTING.nomadAddr} "${addr.slice(0, 200)}" must be https://host:port, http://host:port or unix:///path/api.sock`)
  }
  if (scheme === 'unix') return
  const tlsSet = cfg.nomadCaCert !== undefined || cfg.nomadClientCert !== undefined || cfg.nomadClientKey !== undefined || cfg.nomadTlsServerName !== undefined
  if (tlsSet && scheme !== 'https') {
    throw new RunnerConfigError(`TLS settings (NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY, NOMAD_TLS_SERVER_NAME) are set but ${NOMAD_SETTING.nomadAddr} is ${scheme}://, so they would not be used; give an https:// address`)
  }
  if ((cfg.nomadClientCert === undefined) !== (cfg.nomadClientKey === undefined)) {
    throw new RunnerConfigError(`${NOMAD_SETTING.nomadClientCert} and ${NOMAD_SETTING.nomadClientKey} go together; only one is set`)
  }
  if (cfg.nomadCaCert !== undefined) readPem('nomadCaCert', cfg.nomadCaCert, CERT_PEM)
  if (cfg.nomadClientCert !== undefined) readPem('nomadClientCert', cfg.nomadClientCert, CERT_PEM)
  if (cfg.nomadClientKey !== undefined) readPem('nomadClientKey', cfg.nomadClientKey, KEY_PEM)
}

/** How the runner reaches Nomad: the address, its token, and the TLS material read from the configured files. */
export function nomadTargetFrom(cfg: RunnerConfig): NomadTarget {
  if (nomadScheme(cfg.nomadAddr) === 'unix') return { addr: cfg.nomadAddr, token: cfg.nomadToken }
  const tls = {
    ...(cfg.nomadCaCert !== undefined ? { ca: readPem('nomadCaCert', cfg.nomadCaCert, CERT_PEM) } : {}),
    ...(cfg.nomadClientCert !== undefined ? { cert: readPem('nomadClientCert', cfg.nomadClientCert, CERT_PEM) } : {}),
    ...(cfg.nomadClientKey !== undefined ? { key: readPem('nomadClientKey', cfg.nomadClientKey, KEY_PEM) } : {}),
    ...(cfg.nomadTlsServerName !== undefined ? { servername: cfg.nomadTlsServerName } : {}),
  }
  return { addr: cfg.nomadAddr, token: cfg.nomadToken, ...(Object.keys(tls).length > 0 ? { tls } : {}) }
}
