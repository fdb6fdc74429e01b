/**
 * Flags (with environment fallbacks) of `writ-node-runner watchdog multipath`.
 */
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { NODE_ID_RE } from '@writ/packs/protocol'
import { nodeIdFrom } from '../runner-config.js'

export interface WatchdogConfig {
  intervalMs: number
  kickTimeoutMs: number
  /** Longest wait between kicks of a map whose kicks keep failing. */
  maxBackoffMs: number
  /** Deadline for one `multipathd` / `multipath` query. */
  queryTimeoutMs: number
  metricsListen?: string
  textfileDir?: string
  natsUrl?: string
  natsCreds?: string
  /** CA of the NATS servers' certificates: TLS only, verified against it. */
  natsCa?: string
  /** The name on the NATS servers' certificate (they are reached by IP). */
  natsTlsServerName?: string
  nodeId: string
  nodeName: string
  multipathdBin: string
  multipathBin: string
  ddBin: string
  deviceDir: string
  once: boolean
  logLevel: string
}

/** A flag or environment value that cannot be used; the message names it. */
export class WatchdogConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'WatchdogConfigError'
  }
}

export const WATCHDOG_USAGE = `usage: writ-node-runner watchdog multipath [flags]

  --interval 30s            time between passes
  --kick-timeout 10s        give up on a kick read after this long
  --max-backoff 10m         longest pause between kicks of a map whose kicks keep failing
  --query-timeout 15s       deadline for one multipathd / multipath query
  --metrics-listen H:P      serve /metrics and /healthz (e.g. 127.0.0.1:9464)
  --textfile-dir DIR        write DIR/writ_multipath.prom for node_exporter
  --nats-url URL            [WRIT_NATS_URL]  publish events (none without it)
  --nats-creds FILE         [WRIT_NATS_CREDS]
  --nats-ca FILE            [WRIT_NATS_CA]  CA of the NATS servers' certificates: TLS only, verified against it
  --nats-tls-server-name N  [WRIT_NATS_TLS_SERVER_NAME]  the name on the servers' certificate (they are reached by IP)
  --node-id ID              [WRIT_NODE_ID, NODE_ID, NOMAD_NODE_ID]
  --node-name NAME          [WRIT_NODE_NAME, NODE_NAME, NOMAD_NODE_NAME]  default: hostname
  --multipathd-bin PATH     default multipathd (from PATH)
  --multipath-bin PATH      default multipath (from PATH)
  --dd-bin PATH             default dd (from PATH)
  --device-dir DIR          where maps appear, default /dev/mapper
  --once                    one pass, then exit (status 1 if the topology could not be read)
  --log-level LEVEL         trace|debug|info|warn|error, default info
`

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `500ms`, `30s`, `2m`, `1h` → milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = DURATION_RE.exec(value.trim())
  if (!m) throw new WatchdogConfigError(`--${flag} "${value}" is not a duration like 500ms, 30s, 2m or 1h`)
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  if (!(ms >= 1)) throw new WatchdogConfigError(`--${flag} must be at least 1ms`)
  return Math.round(ms)
}

/**
 * Builds the config from argv and the environment.
 * @throws {WatchdogConfigError} naming the flag at fault.
 */
export function loadWatchdogConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): WatchdogConfig {
  let values: Record<string, string | boolean | undefined>
  try {
    const parsed = parseArgs({
      args: argv, allowPositionals: false, strict: true,
      options: {
        interval: { type: 'string' }, 'kick-timeout': { type: 'string' }, 'max-backoff': { type: 'string' },
        'query-timeout': { type: 'string' }, 'metrics-listen': { type: 'string' }, 'textfile-dir': { type: 'string' },
        'nats-url': { type: 'string' }, 'nats-creds': { type: 'string' }, 'nats-ca': { type: 'string' }, 'nats-tls-server-name': { type: 'string' }, 'node-id': { type: 'string' },
        'node-name': { type: 'string' }, 'multipathd-bin': { type: 'string' }, 'multipath-bin': { type: 'string' },
        'dd-bin': { type: 'string' }, 'device-dir': { type: 'string' }, once: { type: 'boolean' }, 'log-level': { type: 'string' },
      },
    })
    values = parsed.values
  } catch (e) {
    throw new WatchdogConfigError((e as Error).message, { cause: e })
  }
  const str = (k: string): string | undefined => {
    const v = values[k]
    return typeof v === 'string' && v.trim() !== '' ? v : undefined
  }
  const nodeName = str('node-name') ?? env.WRIT_NODE_NAME ?? env.NODE_NAME ?? env.NOMAD_NODE_NAME ?? hostname()
  const nodeId = str('node-id') ?? env.WRIT_NODE_ID ?? env.NODE_ID ?? env.NOMAD_NODE_ID ?? nodeIdFrom(nodeName)
  if (!NODE_ID_RE.test(nodeId)) throw new WatchdogConfigError(`--node-id "${nodeId}" must be letters, digits, "-" or "_" (it is a NATS subject token)`)
  const metricsListen = str('metrics-listen')
  if (metricsListen !== undefined && !/^(?:\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$/.test(metricsListen)) {
    throw new WatchdogConfigError(`--metrics-listen "${metricsListen}" must be HOST:PORT, e.g. 127.0.0.1:9464`)
  }
  const logLevel = str('log-level') ?? 'info'
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new WatchdogConfigError(`--log-level "${logLevel}" is not one of trace, debug, info, warn, error, fatal, silent`)
  const config: WatchdogConfig = {
    intervalMs: parseDuration('interval', str('interval') ?? '30s'),
    kickTimeoutMs: parseDuration('kick-timeout', str('kick-timeout') ?? '10s'),
    maxBackoffMs: parseDuration('max-backoff', str('max-backoff') ?? '10m'),
    queryTimeoutMs: parseDuration('query-timeout', str('query-timeout') ?? '15s'),
    nodeId, nodeName,
    multipathdBin: str('multipathd-bin') ?? 'multipathd',
    multipathBin: str('multipath-bin') ?? 'multipath',
    ddBin: str('dd-bin') ?? 'dd',
    deviceDir: str('device-dir') ?? '/dev/mapper',
    once: values.once === true,
    logLevel,
  }
  const natsUrl = str('nats-url') ?? env.WRIT_NATS_URL
  const natsCreds = str('nats-creds') ?? env.WRIT_NATS_CREDS
  const natsCa = str('nats-ca') ?? env.WRIT_NATS_CA
  const natsTlsServerName = str('nats-tls-server-name') ?? env.WRIT_NATS_TLS_SERVER_NAME
  const textfileDir = str('textfile-dir')
  if (natsUrl !== undefined && natsUrl.trim() !== '') config.natsUrl = natsUrl
  if (natsCreds !== undefined && natsCreds.trim() !== '') config.natsCreds = natsCreds
  if (natsCa !== undefined && natsCa.trim() !== '') config.natsCa = natsCa
  if (natsTlsServerName !== undefined && natsTlsServerName.trim() !== '') config.natsTlsServerName = natsTlsServerName
  if (textfileDir !== undefined) config.textfileDir = textfileDir
  if (metricsListen !== undefined) config.metricsListen = metricsListen
  return config
}
