/**
 * A service's server process as `packs test` runs it: its own process group,
 * its output in a log file under the instance's folder, up when its readiness
 * check says so (polled, bounded), and stopped with SIGTERM, then SIGKILL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'

/** Who a server runs as: an unprivileged user where this process is root (several refuse root). */
export interface DaemonUser {
  uid: number
  gid: number
  /** The command, wrapped so it runs as that user. */
  wrap(argv: readonly string[]): string[]
}

export class ServiceStartError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'ServiceStartError' }
}

/** The last lines of a log, for a start failure's message. */
export function logTail(file: string, lines = 6): string {
  try { return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ') } catch { return '(no log)' }
}

/** Polls `check` until it is true or `timeoutMs` passes. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Runs a setup command to its end (initdb, install-db); throws with its output when it fails. */
export function runSetup(argv: readonly string[], env: NodeJS.ProcessEnv, what: string, timeoutMs = 120_000): string {
  const [file, ...args] = argv as [string, ...string[]]
  const r = spawnSync(file, args, { env, encoding: 'utf8', timeout: timeoutMs, cwd: '/' })
  if (r.error) throw new ServiceStartError(`${what}: cannot run ${file}: ${r.error.message}`)
  if (r.status !== 0) throw new ServiceStartError(`${what}: ${file} exited ${r.status ?? r.signal}: ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-4).join(' | ')}`)
  return r.stdout
}

export class Daemon {
  private constructor(private readonly proc: ChildProcess, private readonly logFile: string) {}

  /** Starts `argv` and waits until `ready` holds; a server that exits or never gets ready is a ServiceStartError naming its log. */
  static async start(argv: readonly string[], opts: { env: NodeJS.ProcessEnv, logFile: string, what: string, ready: () => Promise<boolean>, timeoutMs?: number }): Promise<Daemon> {
    const fd = openSync(opts.logFile, 'a')
    const [file, ...args] = argv as [string, ...string[]]
    const proc = spawn(file, args, { env: opts.env, stdio: ['ignore', fd, fd], detached: true, cwd: '/' })
    closeSync(fd)
    let exit: string | undefined
    proc.once('error', (e) => { exit = `cannot start ${file}: ${e.message}` })
    proc.once('exit', (code, sig) => { exit = `exited ${code ?? sig}` })
    const d = new Daemon(proc, opts.logFile)
    const up = await until(async () => exit !== undefined || await opts.ready(), opts.timeoutMs ?? 60_000)
    if (exit !== undefined || !up) {
      await d.stop()
      throw new ServiceStartError(`${opts.what} ${exit ?? `was not ready within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s`}: ${logTail(opts.logFile)}`)
    }
    return d
  }

  get running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null }

  /** SIGTERM to the whole group, SIGKILL after `graceMs`; resolves once the server process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    const pid = this.proc.pid
    if (pid === undefined || !this.running) return
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()))
    const signal = (s: NodeJS.Signals): void => { try { process.kill(-pid, s) } catch { /* gone */ } }
    signal('SIGTERM')
    const hard = setTimeout(() => signal('SIGKILL'), graceMs)
    await gone
    clearTimeout(hard)
    // Whatever it left in its group (workers that outlive the leader) goes too.
    signal('SIGKILL')
  }

  get log(): string { return this.logFile }
}
