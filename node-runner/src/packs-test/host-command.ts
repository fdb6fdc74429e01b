/**
 * The plain commands around a case — `arrange`, `resolve_args`, `probes`,
 * `cleanup` — run on this host with the case's environment, outside the
 * runner (they set the scene and look at it; they are not what is tested).
 * Each runs in its own process group, bounded in time; the groups are
 * remembered so whatever a step left running in the background (`nohup … &`)
 * is ended with the case.
 */
import { spawn } from 'node:child_process'
import { parseDuration } from '@writ/packs'
import type { CommandStep } from './case-file.js'
import { unmet, type Observed } from './expectations.js'

export interface CommandResult { exitCode: number | null, stdout: string, stderr: string, error?: string }

/** No step may hold a case longer than this. */
const STEP_TIMEOUT_MS = 120_000
/** Output kept from a step: enough for any expectation a case writes. */
const MAX_OUTPUT = 1024 * 1024
/** After the step exits, how long a background child may keep its pipes open. */
const PIPE_SETTLE_MS = 300

/** Every case's groups still open, for an interrupted run to end them all. */
const openGroups = new Set<StepGroups>()

/** Process groups of the steps one case started; `endAll` kills what is still running in them. */
export class StepGroups {
  private readonly pgids = new Set<number>()
  constructor() { openGroups.add(this) }
  add(pgid: number): void { this.pgids.add(pgid) }
  endAll(): void {
    for (const pgid of this.pgids) { try { process.kill(-pgid, 'SIGKILL') } catch { /* already gone */ } }
    this.pgids.clear()
    openGroups.delete(this)
  }
}

/** Ends whatever any case's steps still have running (Ctrl-C on a run outside the sandbox). */
export function endAllSteps(): void {
  for (const g of [...openGroups]) g.endAll()
}

export function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv, groups: StepGroups, timeoutMs = STEP_TIMEOUT_MS): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv as [string, ...string[]]
    const child = spawn(file, args, { env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    if (child.pid !== undefined) groups.add(child.pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { if (stdout.length < MAX_OUTPUT) stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < MAX_OUTPUT) stderr += d.toString() })
    let settled = false
    const done = (r: CommandResult): void => { if (!settled) { settled = true; clearTimeout(timer); resolve(r) } }
    const timer = setTimeout(() => {
      if (child.pid !== undefined) { try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ } }
      done({ exitCode: null, stdout, stderr, error: `no exit within ${timeoutMs} ms; killed` })
    }, timeoutMs)
    child.once('error', (e) => done({ exitCode: null, stdout, stderr, error: `cannot start ${file}: ${e.message}` }))
    child.once('close', (code) => done({ exitCode: code, stdout, stderr }))
    // A background child that kept stdout open must not hold the step: the step itself has exited.
    child.once('exit', (code) => setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); done({ exitCode: code, stdout, stderr }) }, PIPE_SETTLE_MS).unref())
  })
}

export function observedOf(r: CommandResult): Observed {
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.error ? `${r.stderr}${r.error}` : r.stderr }
}

/** What a step is called in a failure line. */
export function stepLabel(kind: string, i: number, step: { name?: string | undefined, argv: readonly string[] }): string {
  return `${kind}[${i}]${step.name ? ` "${step.name}"` : ''} (${step.argv.join(' ').slice(0, 80)})`
}

/**
 * Runs a step until it passes — exit 0 (or its `exit`) and its `expect` —
 * or its `retry_for` runs out (a bounded poll for a condition, never a
 * fixed wait). Resolves with the last run and what it still lacked.
 */
export async function runStep(step: CommandStep, env: NodeJS.ProcessEnv, groups: StepGroups): Promise<{ result: CommandResult, unmet: string[] }> {
  const retryFor = step.retry_for ? parseDuration(step.retry_for) ?? 0 : 0
  const every = step.retry_every ? parseDuration(step.retry_every) ?? 500 : 500
  const deadline = Date.now() + retryFor
  const stepEnv = step.env ? { ...env, ...step.env } : env
  for (;;) {
    const result = await runCommand(step.argv, stepEnv, groups)
    const missing = unmet(step.expect, observedOf(result))
    if (missing.length === 0 || Date.now() + every > deadline) return { result, unmet: missing }
    await new Promise((r) => setTimeout(r, every))
  }
}
