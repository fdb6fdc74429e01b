/**
 * What every executor (exec, http, list) hands back to the runner, and the
 * context it runs in. The runner turns an outcome into a RunResult.
 */
import type { Invocation } from '@writ/packs'
import type { NomadTarget } from '../clients/nomad-client.js'

export interface ExecutionLimits {
  timeoutMs: number
  maxStdoutBytes: number
  maxStderrBytes: number
}

export interface ExecutionContext {
  limits: ExecutionLimits
  /** Aborted on cancel or drain deadline; executors stop work and report `canceled`. */
  signal: AbortSignal
  /** Live output as it is produced (already within caps). */
  onChunk: (stream: 'stdout' | 'stderr', data: string) => void
  nomad: NomadTarget
  docker: { socketPath: string }
}

export interface ExecutionOutcome {
  status: 'succeeded' | 'failed' | 'timed_out' | 'canceled'
  exitCode: number | null
  signal: string | null
  /** Captured output, capped at the limits. */
  stdout: string
  stderr: string
  stdoutTruncated: boolean
  stderrTruncated: boolean
  /** Bytes produced in total, before the cap. */
  stdoutBytes: number
  stderrBytes: number
  /** SHA-256 hex of the full stdout as produced (before the cap). */
  stdoutSha256: string
  /** Human-readable cause when status is not `succeeded`. */
  error?: string
}

export type Executor<K extends Invocation['kind']> = (invocation: Extract<Invocation, { kind: K }>, ctx: ExecutionContext) => Promise<ExecutionOutcome>
