/**
 * A private `nats-server -js` for one `packs test` run: a free loopback port,
 * its store in the run's temp folder, stopped (and its store removed) after.
 * Writs, acks and results travel over it exactly as they do in a fleet.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'

export interface PrivateNats {
  url: string
  stop(): Promise<void>
  /** Ends the server at once (an interrupted run). */
  kill(): void
}

/** A loopback port nothing listens on right now. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

/** True once something accepts connections on the port. */
export function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, host)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

export async function startPrivateNats(dir: string, timeoutMs = 15_000): Promise<PrivateNats> {
  mkdirSync(dir, { recursive: true })
  const port = await freeLoopbackPort()
  const conf = join(dir, 'nats.conf')
  writeFileSync(conf, `listen: 127.0.0.1:${port}\nserver_name: writ-packs-test\njetstream { store_dir: "${join(dir, 'js')}" }\n`)
  let stderr = ''
  const proc: ChildProcess = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const exited = new Promise<never>((_, reject) => {
    proc.once('error', (e) => reject(new Error(`cannot start nats-server: ${e.message} (is it installed? apt-get install nats-server)`)))
    proc.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${stderr.trim()}`)))
  })
  exited.catch(() => {})
  const listening = (async () => {
    const deadline = Date.now() + timeoutMs
    while (!(await portAnswers(port))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  try { await Promise.race([listening, exited]) } catch (e) { proc.kill('SIGKILL'); throw e }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const gone = new Promise<void>((r) => proc.once('exit', () => r()))
      proc.kill('SIGTERM')
      await gone
    },
    kill: () => { proc.kill('SIGKILL') },
  }
}
