/**
 * One case, start to end: whether it can run here at all, its `arrange`
 * steps, the arguments it resolves from commands, the action as a signed
 * writ through the runner, its expectations, the canary check over all the
 * run left behind, its `probes`, and — whatever happened — its `cleanup`.
 */
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'
import { parseDuration, type LoadedAction } from '@writ/packs'
import { SCRUBBED_ENV } from '../executors/exec-executor.js'
import { caseName, type Case, type CaseFile } from './case-file.js'
import { unmet, withDefaults, type Observed } from './expectations.js'
import { findLeaks, runSurfaces } from './canary-scan.js'
import { StepGroups, runCommand, runStep, stepLabel } from './host-command.js'
import type { RunnerUnderTest, RunObservation } from './runner-under-test.js'

export type CaseOutcome =
  | { verdict: 'ok' }
  | { verdict: 'fail', problems: string[] }
  | { verdict: 'skip', reason: string }

/** What every case of one pack shares. */
export interface PackContext {
  file: CaseFile
  runner: RunnerUnderTest
  /** The case file's environment, external service addresses filled in. */
  env: Readonly<Record<string, string>>
  /** Load errors of this pack's actions, by action id. */
  loadErrors: ReadonlyMap<string, string>
  /** The run is root (cases that declare `runner_user: root` need it). */
  root: boolean
  allowShellPacks: boolean
}

/** Whether `binary` can be run with the runner's PATH. */
function onRunnerPath(binary: string): boolean {
  const candidates = binary.includes('/') ? [binary] : SCRUBBED_ENV.PATH!.split(':').map((d) => join(d, binary))
  return candidates.some((c) => { try { accessSync(c, constants.X_OK); return true } catch { return false } })
}

/** Why this case cannot run on this host, or undefined. */
export function skipReason(c: Case, action: LoadedAction | undefined, ctx: PackContext): string | undefined {
  if (!action) return `the action did not load: ${ctx.loadErrors.get(c.action) ?? 'no such action in the pack'}`
  const user = c.runner_user ?? ctx.file.runner?.user
  if (user === 'root' && !ctx.root) return `needs the runner to be root (${c.runner_reason ?? ctx.file.runner?.reason?.trim() ?? 'runner_user: root'}); this run is not`
  if (user !== undefined && user !== 'root') return `needs the runner to run as ${user}; packs test runs it as itself`
  if (action.usesShell && !ctx.allowShellPacks) return `shell action (${action.shellReasons[0] ?? 'a shell'}); runners refuse it unless --allow-shell-packs`
  const spec = action.spec
  const program = spec.kind === 'exec' ? spec.execution.command.binary : spec.kind === 'script' ? spec.execution.script.interpreter : undefined
  if (program !== undefined && !onRunnerPath(program)) return `${program} is not installed on this host`
  return undefined
}

/** The case's environment: the file's, the case's own on top, minus `unset_env`. */
function caseEnv(c: Case, ctx: PackContext): Record<string, string> {
  const env: Record<string, string> = { ...ctx.env, ...c.env }
  for (const name of c.unset_env ?? []) delete env[name]
  return env
}

/** What a run came back with, in the terms expectations speak. */
export function observedRun(obs: RunObservation): Observed {
  const r = obs.result
  const refusal = obs.ack.accepted ? undefined : `refused by runner: ${obs.ack.refusal.code}: ${obs.ack.refusal.message}`
  if (!r) return { status: 'failure', exitCode: null, stdout: '', stderr: '', reason: refusal ?? 'no result came back from the runner' }
  return {
    status: r.status === 'succeeded' ? 'success' : 'failure', exitCode: r.exit_code, stdout: r.stdout, stderr: r.stderr,
    reason: r.error ?? refusal, ...(r.parsed !== undefined ? { parsed: r.parsed } : {}),
  }
}

/**
 * What the runner logged as an error while the run lasted: an exception it
 * survived, a result it could not publish, a journal it could not write.
 * Whatever the case expects, that is the runner's fault, so the case fails.
 */
export function runnerErrors(log: string): string[] {
  const out: string[] = []
  for (const line of log.split('\n')) {
    if (line === '') continue
    let entry: { level?: number, msg?: string, err?: unknown, where?: string }
    try { entry = JSON.parse(line) as typeof entry } catch { continue }
    if ((entry.level ?? 0) >= 50) out.push(`the runner logged an error: ${entry.msg ?? ''}${entry.where ? ` (${entry.where})` : ''}${entry.err ? `: ${String(entry.err)}` : ''}`)
  }
  return out
}

/** Runs `resolve_args`: each argument is what its command prints, trimmed, once it prints something. */
async function resolveArgs(c: Case, env: NodeJS.ProcessEnv, groups: StepGroups): Promise<{ args: Record<string, string>, problems: string[] }> {
  const args: Record<string, string> = {}
  const problems: string[] = []
  for (const [name, spec] of Object.entries(c.resolve_args ?? {})) {
    const deadline = Date.now() + (spec.retry_for ? parseDuration(spec.retry_for) ?? 0 : 0)
    const every = spec.retry_every ? parseDuration(spec.retry_every) ?? 500 : 500
    for (;;) {
      const r = await runCommand(spec.argv, spec.env ? { ...env, ...spec.env } : env, groups)
      const value = r.stdout.trim()
      if (r.exitCode === 0 && value !== '') { args[name] = value; break }
      if (Date.now() + every > deadline) {
        problems.push(`resolve_args.${name} (${spec.argv.join(' ').slice(0, 80)}) gave no value: exit ${r.exitCode ?? r.error}, stdout ${JSON.stringify(value.slice(0, 80))}`)
        break
      }
      await new Promise((res) => setTimeout(res, every))
    }
  }
  return { args, problems }
}

/** A failure line never shows a canary's value, even when it quotes the output that leaked it. */
function hidden(problems: readonly string[], secrets: Readonly<Record<string, string>>): string[] {
  return problems.map((p) => Object.entries(secrets).reduce((text, [name, value]) => (value ? text.split(value).join(`[${name}]`) : text), p))
}

export async function runCase(c: Case, ctx: PackContext): Promise<CaseOutcome> {
  const env = caseEnv(c, ctx)
  const secrets = Object.fromEntries(ctx.file.secret_env.filter((n) => env[n] !== undefined).map((n) => [n, env[n] as string]))
  const outcome = await runCaseSteps(c, ctx, env, secrets)
  return outcome.verdict === 'fail' ? { verdict: 'fail', problems: hidden(outcome.problems, secrets) } : outcome
}

async function runCaseSteps(c: Case, ctx: PackContext, env: Record<string, string>, secrets: Record<string, string>): Promise<CaseOutcome> {
  const commandEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const name of c.unset_env ?? []) delete commandEnv[name]
  const groups = new StepGroups()
  const problems: string[] = []
  try {
    for (const [i, step] of (c.arrange ?? []).entries()) {
      const r = await runStep(step, commandEnv, groups)
      if (r.unmet.length > 0) return { verdict: 'fail', problems: [`${stepLabel('arrange', i, step)}: ${r.unmet.join('; ')}${r.result.stderr ? `; stderr ${JSON.stringify(r.result.stderr.trim().slice(0, 200))}` : ''}`] }
    }
    const resolved = await resolveArgs(c, commandEnv, groups)
    if (resolved.problems.length > 0) return { verdict: 'fail', problems: resolved.problems }

    const obs = await ctx.runner.run(c.action, { ...c.args, ...resolved.args }, env, `packs test: ${caseName(c)}`)
    problems.push(...unmet(withDefaults(ctx.file.defaults?.expect, c.expect), observedRun(obs)))
    for (const leak of findLeaks(secrets, runSurfaces(obs))) problems.push(`leaked ${leak}`)
    problems.push(...runnerErrors(obs.log))

    for (const [i, step] of (c.probes ?? []).entries()) {
      const r = await runStep(step, commandEnv, groups)
      if (r.unmet.length > 0) problems.push(`${stepLabel('probe', i, step)}: ${r.unmet.join('; ')}`)
    }
  } finally {
    for (const [i, step] of (c.cleanup ?? []).entries()) {
      const r = await runStep(step, commandEnv, groups)
      if (r.unmet.length > 0) problems.push(`${stepLabel('cleanup', i, step)}: ${r.unmet.join('; ')}${r.result.stderr ? `; stderr ${JSON.stringify(r.result.stderr.trim().slice(0, 200))}` : ''}`)
    }
    groups.endAll()
  }
  return problems.length > 0 ? { verdict: 'fail', problems } : { verdict: 'ok' }
}

