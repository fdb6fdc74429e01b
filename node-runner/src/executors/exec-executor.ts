/**
 * Runs a declared binary with execFile semantics: no shell, a scrubbed
 * environment, a fixed working directory, its own process group (so a timeout
 * kills everything it started), and capped, hashed output.
 */
import { spawn } from 'node:child_process'
import type { Invocation } from '@writ/packs'
import type { ExecutionContext, ExecutionOutcome } from './execution-outcome.js'
import { OutputCapture } from './output-capture.js'

/** The only environment a command sees, plus what its action declares. */
export const SCRUBBED_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
}

/** Time between SIGTERM and SIGKILL to the process group. */
const KILL_GRACE_MS = 2000
/** After the leader exits, how long to wait for stragglers holding its pipes. */
const PIPE_SETTLE_MS = 500

export interface ExecOptions { successExitCodes?: readonly number[] | undefined, cwd?: string | undefined }

export function executeCommand(
  invocation: Extract<Invocation, { kind: 'exec' | 'script' }>,
  ctx: ExecutionContext,
  opts: ExecOptions = {},
): Promise<ExecutionOutcome> {
  const [file, args] = invocation.kind === 'exec'
    ? [invocation.binary, invocation.argv]
    : [invocation.interpreter, [invocation.script, ...invocation.argv]]
  const stdout = new OutputCapture(ctx.limits.maxStdoutBytes, (t) => ctx.onChunk('stdout', t))
  const stderr = new OutputCapture(ctx.limits.maxStderrBytes, (t) => ctx.onChunk('stderr', t))
  const ok = new Set(opts.successExitCodes ?? [0])

  return new Promise((resolve) => {
    let ended: 'timed_out' | 'canceled' | undefined
    let spawnError: Error | undefined
    const child = spawn(file, args, {
      cwd: invocation.cwd ?? opts.cwd ?? '/',
      env: { ...SCRUBBED_ENV, ...ctx.inheritedEnv, ...invocation.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    })
    child.stdout.on('data', (d: Buffer) => stdout.push(d))
    child.stderr.on('data', (d: Buffer) => stderr.push(d))

    const killGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try { process.kill(-child.pid, signal) } catch { /* group already gone */ }
    }
    let hardKill: NodeJS.Timeout | undefined
    const stop = (why: 'timed_out' | 'canceled'): void => {
      if (ended) return
      ended = why
      killGroup('SIGTERM')
      hardKill = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS)
      hardKill.unref()
    }
    const timer = setTimeout(() => stop('timed_out'), ctx.limits.timeoutMs)
    const onAbort = (): void => stop('canceled')
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    if (ctx.signal.aborted) onAbort()

    let settled = false
    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ctx.signal.removeEventListener('abort', onAbort)
      // Whatever the leader left behind in its group goes with it.
      killGroup('SIGKILL')
      if (hardKill) clearTimeout(hardKill)
      let status: ExecutionOutcome['status']
      let error: string | undefined
      if (spawnError) { status = 'failed'; error = `cannot start ${file}: ${spawnError.message}` }
      else if (ended === 'timed_out') { status = 'timed_out'; error = `no exit within ${ctx.limits.timeoutMs} ms; process group killed` }
      else if (ended === 'canceled') { status = 'canceled'; error = 'canceled; process group killed' }
      else if (code !== null && ok.has(code)) status = 'succeeded'
      else { status = 'failed'; error = code !== null ? `process exited with code ${code}` : `killed by ${sig}` }
      resolve({
        status, exitCode: code, signal: sig,
        stdout: stdout.text(), stderr: stderr.text(),
        stdoutTruncated: stdout.truncated, stderrTruncated: stderr.truncated,
        stdoutBytes: stdout.total, stderrBytes: stderr.total, stdoutSha256: stdout.sha256(),
        ...(error ? { error } : {}),
      })
    }
    child.once('error', (e) => { spawnError = e; finish(null, null) })
    child.once('close', (code, sig) => finish(code, sig))
    child.once('exit', (code, sig) => {
      // A grandchild can keep the pipes open after the leader exits; don't wait on it forever.
      setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); finish(code, sig) }, PIPE_SETTLE_MS).unref()
    })
  })
}
