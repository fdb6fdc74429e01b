/**
 * Process entry: read config, build the app, listen, and shut down cleanly
 * (drain NATS) on SIGTERM/SIGINT. `writ serve` calls `serve`; running this
 * file directly takes `--config FILE` or `WRIT_CONFIG`.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { buildApp, createLogger } from './http/app.js'
import { ConfigError } from './config.js'
import { loadConfig } from './config-file.js'

export async function serve(configFile: string): Promise<void> {
  const config = loadConfig(configFile)
  const log = createLogger(config)
  const app = await buildApp(config, { logger: log })
  const address = await app.listen({ host: config.listen.host, port: config.listen.port })
  log.info({ address, instance: app.writ.instanceId }, 'control plane listening')
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => process.exit(1), 15_000)
    force.unref()
    app.close().then(() => process.exit(0), (err: unknown) => { log.error({ err }, 'shutdown failed'); process.exit(1) })
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

function configArg(argv: readonly string[]): string | undefined {
  const i = argv.indexOf('--config')
  return i >= 0 ? argv[i + 1] : process.env.WRIT_CONFIG
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const file = configArg(process.argv.slice(2))
  if (!file) {
    process.stderr.write('usage: main.js --config FILE (or WRIT_CONFIG=FILE)\n')
    process.exit(2)
  }
  serve(file).catch((err: unknown) => {
    const e = err as Error
    process.stderr.write(`writ control plane: ${e instanceof ConfigError ? e.message : `${e.name}: ${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ''}`}\n`)
    process.exit(1)
  })
}
