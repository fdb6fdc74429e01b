/**
 * `writ-node-runner watchdog multipath [flags]`: runs the multipath watchdog
 * until SIGTERM/SIGINT, or one pass with `--once`.
 */
import type { Server } from 'node:http'
import { pino } from 'pino'
import { MultipathWatchdog } from './multipath-watchdog.js'
import { serveWatchdogHttp } from './metrics-http-server.js'
import { WATCHDOG_USAGE, WatchdogConfigError, loadWatchdogConfig, type WatchdogConfig } from './watchdog-config.js'
import { WatchdogEventPublisher } from './watchdog-events.js'

/**
 * Runs the watchdog with these flags (argv after `watchdog multipath`).
 * Resolves with the process exit status: 0 after a signal or a good `--once`
 * pass, 1 when the `--once` pass could not read the topology, 2 on bad flags.
 */
export async function runWatchdogCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(WATCHDOG_USAGE); return 0 }
  let config: WatchdogConfig
  try { config = loadWatchdogConfig(argv) } catch (e) {
    if (e instanceof WatchdogConfigError) { process.stderr.write(`writ-node-runner watchdog multipath: ${e.message}\n\n${WATCHDOG_USAGE}`); return 2 }
    throw e
  }
  const log = pino({ level: config.logLevel, base: { component: 'multipath-watchdog', nodeId: config.nodeId } })
  let events: WatchdogEventPublisher
  try {
    events = WatchdogEventPublisher.start({ ...pick(config), log })
  } catch (e) {
    process.stderr.write(`writ-node-runner watchdog multipath: ${(e as Error).message}\n`)
    return 2
  }
  const watchdog = new MultipathWatchdog({ config, log, events })
  let server: Server | undefined
  if (config.metricsListen !== undefined) {
    try {
      server = await serveWatchdogHttp(config.metricsListen, { renderMetrics: () => watchdog.metrics.render(), unhealthyReason: () => watchdog.unhealthyReason() })
    } catch (e) {
      process.stderr.write(`writ-node-runner watchdog multipath: --metrics-listen ${config.metricsListen}: ${(e as Error).message}\n`)
      await events.close()
      return 2
    }
    const address = server.address()
    log.info({ listen: typeof address === 'object' && address ? `${address.address}:${address.port}` : config.metricsListen }, 'serving /metrics and /healthz')
  }
  log.info({ intervalMs: config.intervalMs, kickTimeoutMs: config.kickTimeoutMs, deviceDir: config.deviceDir, nats: config.natsUrl !== undefined, once: config.once }, 'multipath watchdog started')

  const shutdown = async (): Promise<void> => {
    watchdog.stop()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await events.close()
  }
  if (config.once) {
    const report = await watchdog.runPass()
    await shutdown()
    return report.ok ? 0 : 1
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log.info({ signal, hungReads: watchdog.hungMaps() }, 'stopping; hung kick reads, if any, are left to the kernel')
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      void shutdown().then(() => resolve(0), () => resolve(1))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    watchdog.start()
  })
}

function pick(c: WatchdogConfig): { natsUrl?: string, natsCreds?: string, natsCa?: string, natsTlsServerName?: string, nodeId: string, nodeName: string } {
  return {
    nodeId: c.nodeId, nodeName: c.nodeName, ...(c.natsUrl !== undefined ? { natsUrl: c.natsUrl } : {}),
    ...(c.natsCreds !== undefined ? { natsCreds: c.natsCreds } : {}), ...(c.natsCa !== undefined ? { natsCa: c.natsCa } : {}),
    ...(c.natsTlsServerName !== undefined ? { natsTlsServerName: c.natsTlsServerName } : {}),
  }
}
