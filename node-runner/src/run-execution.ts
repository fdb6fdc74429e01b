/**
 * Runs one verified writ to a RunResult: the checks right before it runs,
 * the executor for the action's kind under the effective limits, the parsed
 * output. Whatever an executor, parser or client throws or rejects with
 * becomes a `failed` result naming the cause: nothing in a run can end the
 * runner.
 */
import { PackCatalog } from '@writ/packs'
import type { Refusal, RunResult, Writ } from '@writ/packs/protocol'
import { PROTOCOL_VERSION } from '@writ/packs/protocol'
import type { NomadTarget } from './clients/nomad-client.js'
import type { ExecutionContext, ExecutionOutcome, HttpClients } from './executors/execution-outcome.js'
import { executeCommand } from './executors/exec-executor.js'
import { executeList } from './executors/list-executor.js'
import { withKernelLogSource } from './kernel-log-source.js'
import { parseOutput } from './parsers/index.js'
import type { DmesgEntry } from './parsers/dmesg.js'
import { bootTimeMs, withWallClock } from './parsers/dmesg-wall-clock.js'
import type { Verdict } from './writ-verifier.js'
import { redactorFor } from './output-redaction.js'
import { preflightRefusal } from './run-preflight.js'
import { describeError } from './clients/api-errors.js'

/** SHA-256 of zero bytes: the output hash of a run that produced nothing. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

export type AcceptedWrit = Extract<Verdict, { ok: true }>

export interface RunTargets {
  nomad: NomadTarget
  docker: { socketPath: string }
  /** A file dmesg reads instead of /dev/kmsg. */
  kernelLogFile?: string | undefined
  /** API clients in place of the defaults (tests inject failing ones). */
  clients?: Partial<HttpClients> | undefined
  /** The variables of the runner's environment commands inherit, read when a run starts. */
  inheritedEnv?: (() => Record<string, string>) | undefined
}

export interface RunContext {
  nodeId: string
  multipathdSockets: readonly string[]
  signal: AbortSignal
  onChunk: ExecutionContext['onChunk']
}

/**
 * The whole run of an accepted writ: the preflight checks (a refusal runs
 * nothing), then the action. Never rejects: an exception anywhere in it is
 * reported as a `failed` run with its cause, and `internalError` says so for
 * the runner's log.
 */
export async function runAcceptedWrit(v: AcceptedWrit, targets: RunTargets, ctx: RunContext): Promise<{ result: RunResult, internalError?: string }> {
  try {
    const refusal = await preflightRefusal(v.invocation, {
      nodeId: ctx.nodeId, nomad: targets.nomad, multipathdSockets: ctx.multipathdSockets,
      timeoutMs: PackCatalog.limits(v.action, v.writ.options).timeoutMs, signal: ctx.signal, callNomad: targets.clients?.nomad,
      approvedState: v.writ.state,
    })
    if (refusal) return { result: refusalResult(v.writ, refusal) }
    return { result: await executeWrit(v, targets, ctx.signal, ctx.onChunk) }
  } catch (e) {
    const internalError = describeError(e)
    const now = new Date().toISOString()
    return {
      internalError,
      result: {
        v: PROTOCOL_VERSION, run_id: v.writ.run_id, node_id: v.writ.node_id, action: v.writ.action, status: 'failed',
        error: `runner error: ${internalError}; the runner went on`, exit_code: null, signal: null,
        started_at: now, finished_at: now, duration_ms: 0, stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false,
        stdout_bytes: 0, stderr_bytes: 0, output_sha256: EMPTY_SHA256,
      },
    }
  }
}


export async function executeWrit(
  v: AcceptedWrit,
  targets: RunTargets,
  signal: AbortSignal,
  onChunk: ExecutionContext['onChunk'],
): Promise<RunResult> {
  const started = new Date()
  const limits = PackCatalog.limits(v.action, v.writ.options)
  const redact = redactorFor(v.action.spec)
  // Output with redaction rules is only sent whole, after redaction: live chunks could split a secret.
  const ctx: ExecutionContext = {
    limits, signal, onChunk: redact ? () => {} : onChunk, nomad: targets.nomad, docker: targets.docker, clients: targets.clients,
    inheritedEnv: targets.inheritedEnv?.(),
  }
  let outcome: ExecutionOutcome
  try {
    const inv = v.invocation
    const spec = v.action.spec
    switch (inv.kind) {
      case 'exec':
      case 'script':
        outcome = await executeCommand(withKernelLogSource(inv, targets.kernelLogFile), ctx, { successExitCodes: 'success_exit_codes' in spec.execution ? spec.execution.success_exit_codes : undefined })
        break
      case 'http': {
        // Loaded on first use: a runner may never call an API.
        const { executeHttp } = await import('./executors/http-executor.js')
        outcome = await executeHttp(inv, ctx)
        break
      }
      case 'list': outcome = await executeList(inv, ctx); break
    }
  } catch (e) {
    outcome = {
      status: 'failed', exitCode: null, signal: null, stdout: '', stderr: '', stdoutTruncated: false, stderrTruncated: false,
      stdoutBytes: 0, stderrBytes: 0, stdoutSha256: EMPTY_SHA256, error: `executor error: ${describeError(e)}`,
    }
  }
  if (redact) { outcome.stdout = redact(outcome.stdout); outcome.stderr = redact(outcome.stderr) }
  const finished = new Date()
  const result: RunResult = {
    v: PROTOCOL_VERSION, run_id: v.writ.run_id, node_id: v.writ.node_id, action: v.writ.action,
    status: outcome.status, exit_code: outcome.exitCode, signal: outcome.signal,
    started_at: started.toISOString(), finished_at: finished.toISOString(), duration_ms: finished.getTime() - started.getTime(),
    stdout: outcome.stdout, stderr: outcome.stderr, stdout_truncated: outcome.stdoutTruncated, stderr_truncated: outcome.stderrTruncated,
    stdout_bytes: outcome.stdoutBytes, stderr_bytes: outcome.stderrBytes, output_sha256: outcome.stdoutSha256,
    ...(outcome.error ? { error: outcome.error } : {}),
  }
  const parser = v.action.spec.output.parser
  if (outcome.status === 'succeeded' && parser !== 'text' && parser !== 'raw') {
    if (outcome.stdoutTruncated && parser === 'json') result.parse_error = 'output was truncated at the cap; JSON not parsed'
    else {
      const p = parseOutput(parser, outcome.stdout)
      if (p.error !== undefined) result.parse_error = p.error
      else if (p.parsed !== undefined) result.parsed = p.parsed
      // The host's own kernel records get wall-clock times; a kernel-log file is some other boot's.
      if (parser === 'dmesg' && Array.isArray(result.parsed) && v.invocation.kind === 'exec' && targets.kernelLogFile === undefined) {
        result.parsed = withWallClock(result.parsed as DmesgEntry[], bootTimeMs())
      }
    }
    if (result.parse_error && v.action.spec.output.parser_required) {
      result.status = 'failed'
      result.error = `output did not parse as ${parser}: ${result.parse_error}`
    }
  }
  return result
}

/** The result a refused writ gets: nothing ran, so no output. */
export function refusalResult(writ: Pick<Writ, 'run_id' | 'node_id' | 'action'>, refusal: Refusal): RunResult {
  const now = new Date().toISOString()
  return {
    v: PROTOCOL_VERSION, run_id: writ.run_id, node_id: writ.node_id, action: writ.action, status: 'refused', refusal,
    error: `refused by runner: ${refusal.code}: ${refusal.message}`, exit_code: null, signal: null,
    started_at: now, finished_at: now, duration_ms: 0, stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false,
    stdout_bytes: 0, stderr_bytes: 0, output_sha256: EMPTY_SHA256,
  }
}
