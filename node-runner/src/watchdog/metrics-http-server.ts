/**
 * The watchdog's HTTP surface: GET /metrics (Prometheus text 0.0.4) and
 * GET /healthz (200 while passes keep reading the topology).
 */
import { createServer, type Server } from 'node:http'

export interface WatchdogHttpSources {
  renderMetrics(): Promise<string>
  /** null when healthy, else why not. */
  unhealthyReason(): string | null
}

/** Listens on `HOST:PORT` and resolves once bound; port 0 picks a free one (see `server.address()`). */
export function serveWatchdogHttp(listen: string, sources: WatchdogHttpSources): Promise<Server> {
  const idx = listen.lastIndexOf(':')
  const host = listen.slice(0, idx).replace(/^\[(.*)\]$/, '$1')
  const port = Number(listen.slice(idx + 1))
  const server = createServer((req, res) => {
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n')
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/metrics') {
      sources.renderMetrics().then((text) => send(200, text, 'text/plain; version=0.0.4; charset=utf-8'), (err: Error) => send(500, `cannot render metrics: ${err.message}\n`))
      return
    }
    if (path === '/healthz') {
      const reason = sources.unhealthyReason()
      return reason === null ? send(200, 'ok\n') : send(503, `${reason}\n`)
    }
    send(404, 'not found\n')
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve(server) })
  })
}
