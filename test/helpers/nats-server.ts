/**
 * Starts a real `nats-server -js` for one test suite on a free loopback port,
 * with its own JetStream store, and stops it (and removes the store) after.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface NatsServerHandle {
  url: string
  port: number
  storeDir: string
  process: ChildProcess
  /** The server's recent log lines (stderr, last 16 KiB): what it said about clients it refused. */
  log(): string
  /** Kills the server (SIGKILL with `hard`), keeping the store so it can be restarted. */
  kill(hard?: boolean): Promise<void>
  /** Starts the server again on the same port and store. */
  restart(): Promise<void>
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface NatsServerOptions {
  /** Extra config text appended to the generated config file (e.g. a cluster block). */
  extraConfig?: string
  port?: number
  storeDir?: string
  serverName?: string
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const port = opts.port ?? await freePort()
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'writ-nats-'))
  const confFile = join(storeDir, 'nats.conf')
  writeFileSync(confFile, [
    `listen: 127.0.0.1:${port}`,
    `server_name: ${opts.serverName ?? `writ-test-${port}`}`,
    `jetstream { store_dir: "${join(storeDir, 'js')}" }`,
    opts.extraConfig ?? '',
  ].join('\n'))
  let proc: ChildProcess
  let stderr = ''
  const start = async (): Promise<void> => {
    proc = spawn('nats-server', ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    stderr = ''
    proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-16_000) })
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${stderr}`))))
    exited.catch(() => {})
    await Promise.race([waitForPort(port, 10_000), exited])
    handle.process = proc
  }
  const kill = async (hard = false): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const gone = new Promise<void>((r) => proc.once('exit', () => r()))
    proc.kill(hard ? 'SIGKILL' : 'SIGTERM')
    await gone
  }
  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`, port, storeDir, process: undefined as unknown as ChildProcess,
    log: () => stderr, kill, restart: start,
    stop: async () => { await kill(); if (!opts.storeDir) rmSync(storeDir, { recursive: true, force: true }) },
  }
  await start()
  return handle
}
