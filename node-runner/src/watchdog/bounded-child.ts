/**
 * A child process with a deadline that the caller never waits past. A read
 * on a queueing multipath map sleeps uninterruptibly in the kernel (`D`): it
 * ignores SIGKILL and cannot be reaped, so waiting for its exit — which is
 * what execFile's callback does — would hang the caller with it.
 */
import { spawn } from 'node:child_process'

/** How a bounded child ended, as far as the caller needs to know. */
export type BoundedOutcome =
  | { kind: 'exited', code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number }
  | { kind: 'timed_out', ms: number, pid: number | undefined }
  | { kind: 'spawn_failed', error: NodeJS.ErrnoException }

export interface BoundedChild {
  /** Settles at exit, at the deadline (after sending SIGKILL), or when spawning fails — whichever is first. */
  outcome: Promise<BoundedOutcome>
  /** Settles only when the process has really exited (never, while it stays in D state). */
  exited: Promise<void>
  pid: number | undefined
}

export interface BoundedChildOptions {
  timeoutMs: number
  /** Output beyond this is dropped (the child keeps running). */
  maxOutputBytes?: number
  env?: NodeJS.ProcessEnv
  /** Aborting ends the wait at once, as a deadline would (shutdown must not wait on a hung child). */
  signal?: AbortSignal
}

/** Starts `file` with `args` (no shell). */
export function startBoundedChild(file: string, args: string[], options: BoundedChildOptions): BoundedChild {
  const started = Date.now()
  const max = options.maxOutputBytes ?? 8 * 1024 * 1024
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env })
  // A hung child must not keep this process alive at shutdown.
  child.unref()
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  let outBytes = 0
  let errBytes = 0
  child.stdout.on('data', (d: Buffer) => { if (outBytes < max) { stdout.push(d); outBytes += d.length } })
  child.stderr.on('data', (d: Buffer) => { if (errBytes < 65536) { stderr.push(d); errBytes += d.length } })
  // The pipes are handles too: unref them so only the timer and the caller decide when to wait.
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.()

  let settle!: (o: BoundedOutcome) => void
  const outcome = new Promise<BoundedOutcome>((resolve) => { settle = resolve })
  let markExited!: () => void
  const exited = new Promise<void>((resolve) => { markExited = resolve })
  let done = false
  const finish = (o: BoundedOutcome): void => {
    if (done) return
    done = true
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', giveUp)
    settle(o)
  }

  const giveUp = (): void => {
    // SIGKILL works on a child sleeping interruptibly (e.g. opening a FIFO); in D state it is queued until the I/O ends.
    try { child.kill('SIGKILL') } catch { /* already gone */ }
    finish({ kind: 'timed_out', ms: Date.now() - started, pid: child.pid })
  }
  const timer = setTimeout(giveUp, options.timeoutMs)
  if (options.signal?.aborted) giveUp()
  else options.signal?.addEventListener('abort', giveUp, { once: true })

  child.once('error', (error: NodeJS.ErrnoException) => {
    // 'error' without a pid means the process never started; 'exit' will not follow.
    if (child.pid === undefined) { finish({ kind: 'spawn_failed', error }); markExited() }
  })
  child.once('exit', () => markExited())
  // 'close' waits for stdio to drain too, so the output is complete.
  child.once('close', (code, signal) => {
    finish({
      kind: 'exited', code, signal, ms: Date.now() - started,
      stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'),
    })
  })
  return { outcome, exited, pid: child.pid }
}
