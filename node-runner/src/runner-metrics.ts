/**
 * The runner's own counters and its small HTTP surface (/metrics, /healthz,
 * /readyz), served only when `metricsListen` is set.
 */
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'
import { RefusalCodeSchema } from '@writ/packs/protocol'

export class RunnerMetrics {
  readonly registry = new Registry()
  private readonly runs = new Counter({ name: 'writ_runner_runs_total', help: 'Runs finished by this runner, by final status.', labelNames: ['status'], registers: [this.registry] })
  private readonly refusals = new Counter({ name: 'writ_runner_refusals_total', help: 'Writs refused by this runner, by reason.', labelNames: ['code'], registers: [this.registry] })
  private readonly internalErrors = new Counter({
    name: 'writ_runner_internal_errors_total', registers: [this.registry],
    help: 'Exceptions inside the runner (an executor, parser or client throwing, an unhandled rejection) that it reported and survived.',
  })
  inFlight = 0
  resultsSpooled = 0
  connected = false
  /** Subscribed to this node's writ and cancel subjects. */
  listening = false
  draining = false

  constructor() {
    const read = (name: string, help: string, value: () => number): Gauge =>
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(value()) } })
    read('writ_runner_in_flight', 'Runs executing now.', () => this.inFlight)
    read('writ_runner_nats_connected', '1 while connected to NATS.', () => (this.connected ? 1 : 0))
    // Every code from 0: a runner's first forged writ is then an increase() the refusal alert sees.
    for (const code of RefusalCodeSchema.options) this.refusals.inc({ code }, 0)
  }

  countRun(status: string): void { this.runs.inc({ status }) }
  countRefusal(code: string): void { this.refusals.inc({ code }) }
  countInternalError(): void { this.internalErrors.inc() }

  /** Prometheus text format. */
  render(): Promise<string> { return this.registry.metrics() }
}

export function serveRunnerHttp(listen: string, metrics: RunnerMetrics): Promise<Server> {
  const idx = listen.lastIndexOf(':')
  const host = idx > 0 ? listen.slice(0, idx) : '127.0.0.1'
  const port = Number(idx >= 0 ? listen.slice(idx + 1) : listen)
  const server = createServer((req, res) => {
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => { res.writeHead(code, { 'content-type': type }); res.end(body) }
    if (req.method !== 'GET') return send(405, 'method not allowed\n')
    if (req.url === '/metrics') {
      metrics.render().then((text) => send(200, text, metrics.registry.contentType), (err: Error) => send(500, `cannot render metrics: ${err.message}\n`))
      return
    }
    if (req.url === '/healthz') return send(200, 'ok\n')
    if (req.url === '/readyz') {
      if (metrics.draining) return send(503, 'draining\n')
      if (!metrics.connected) return send(503, 'not connected to NATS\n')
      return metrics.listening ? send(200, 'ready\n') : send(503, 'not yet listening for writs\n')
    }
    send(404, 'not found\n')
  })
  return new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => resolve(server)) })
}
