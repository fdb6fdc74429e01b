/**
 * Runs the control plane as a real child process (`dist/main.js --config`),
 * so a test can SIGKILL it mid-run and start it again.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join, dirname } from 'node:path'

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'control-plane', 'dist', 'main.js')

export interface CpProcess { url: string, child: ChildProcess, output(): string, kill9(): Promise<void>, stop(): Promise<void> }

export async function startCpProcess(configFile: string, env: Record<string, string> = {}): Promise<CpProcess> {
  const child = spawn(process.execPath, [MAIN, '--config', configFile], { env: { ...process.env, WRIT_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start:\n${out}`)), 60_000)
    const check = (): void => {
      const m = /"address":"(http:\/\/[^"]+)".*control plane listening/.exec(out)
      if (m) { clearTimeout(timer); resolve(m[1] as string) }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`control plane exited (${code}):\n${out}`)) })
  })
  const gone = (): Promise<void> => new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', () => r()) })
  return {
    url, child, output: () => out,
    kill9: async () => { child.kill('SIGKILL'); await gone() },
    stop: async () => { child.kill('SIGTERM'); await gone() },
  }
}
