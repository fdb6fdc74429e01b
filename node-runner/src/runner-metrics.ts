/**
 * The runner's own counters and its small HTTP surface (/metrics, /healthz,
 * /readyz), served only when `metricsListen` is set.
 */
import { createServer, type Server } from 'node:http'

export class RunnerMetrics {
  readonly runsByStatus = new Map<string, number>()
  readonly refusalsByCode = new Map<string, number>()
  inFlight = 0
  resultsSpooled = 0
  connected = false
  draining = false

  countRun(status: string): void { this.runsByStatus.set(status, (this.runsByStatus.get(status) ?? 0) + 1) }
  countRefusal(code: string): void { this.refusalsByCode.set(code, (this.refusalsByCode.get(code) ?? 0) + 1) }

  /** Prometheus text format 0.0.4. */
  render(): string {
    const lines = [
      '# HELP writ_runner_runs_total Runs finished by this runner, by final status.',
      '# TYPE writ_runner_runs_total counter',
      ...[...this.runsByStatus].map(([s, n]) => `writ_runner_runs_total{status="${s}"} ${n}`),
      '# HELP writ_runner_refusals_total Writs refused by this runner, by reason.',
      '# TYPE writ_runner_refusals_total counter',
      ...[...this.refusalsByCode].map(([c, n]) => `writ_runner_refusals_total{code="${c}"} ${n}`),
      '# HELP writ_runner_in_flight Runs executing now.',
      '# TYPE writ_runner_in_flight gauge',
      `writ_runner_in_flight ${this.inFlight}`,
      '# HELP writ_runner_nats_connected 1 while connected to NATS.',
      '# TYPE writ_runner_nats_connected gauge',
      `writ_runner_nats_connected ${this.connected ? 1 : 0}`,
    ]
    return `${lines.join('\n')}\n`
  }
}

export function serveRunnerHttp(listen: string, metrics: RunnerMetrics): Promise<Server> {
  const idx = listen.lastIndexOf(':')
  const host = idx > 0 ? listen.slice(0, idx) : '127.0.0.1'
  const port = Number(idx >= 0 ? listen.slice(idx + 1) : listen)
  const server = createServer((req, res) => {
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => { res.writeHead(code, { 'content-type': type }); res.end(body) }
    if (req.method !== 'GET') return send(405, 'method not allowed\n')
    if (req.url === '/metrics') return send(200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8')
    if (req.url === '/healthz') return send(200, 'ok\n')
    if (req.url === '/readyz') return metrics.connected && !metrics.draining ? send(200, 'ready\n') : send(503, metrics.draining ? 'draining\n' : 'not connected to NATS\n')
    send(404, 'not found\n')
  })
  return new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => resolve(server)) })
}
