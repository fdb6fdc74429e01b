/**
 * The node-runner as a real child process (`node-runner/dist/cli.js run`)
 * against a control-plane fixture: its packs, the fixture's public key
 * trusted, a journal in the fixture's folder. Resolves once it listens for
 * writs; `stop()` sends SIGTERM and waits for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { runnerJournalPath, type CpFixture } from './cp-fixtures.js'
import { REPO_ROOT } from './runner-harness.js'

const CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')

export interface RunnerProcess { child: ChildProcess, output(): string, stop(): Promise<void> }

export async function startRunnerProcess(fx: CpFixture, natsUrl: string, nodeId: string, opts: { packDirs: string[], flags?: string[] }): Promise<RunnerProcess> {
  const args = [CLI, 'run', '--nats-url', natsUrl, '--node-id', nodeId, '--node-name', nodeId, '--trusted-keys', fx.publicKeyFile,
    '--journal', runnerJournalPath(fx, nodeId), '--heartbeat-interval-ms', '200', '--log-level', 'info',
    ...opts.packDirs.flatMap((d) => ['--packs', d]), ...(opts.flags ?? [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node-runner did not start:\n${out}`)), 15_000)
    const check = (): void => { if (out.includes('listening for writs')) { clearTimeout(timer); resolve() } }
    child.stdout?.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`node-runner exited (${code}):\n${out}`)) })
  })
  const gone = (): Promise<void> => new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', () => r()) })
  return { child, output: () => out, stop: async () => { child.kill('SIGTERM'); await gone() } }
}
