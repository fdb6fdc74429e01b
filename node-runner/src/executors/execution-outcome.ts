/**
 * What every executor (exec, http, list) hands back to the runner, and the
 * context it runs in. The runner turns an outcome into a RunResult.
 */
import type { Invocation } from '@writ/packs'
import type { NomadCall, NomadTarget } from '../clients/nomad-client.js'
import type { DockerCall } from '../clients/docker-client.js'
import type { DemuxSinks } from '../clients/docker-stream-demuxer.js'

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
  /** The runner's own variables its configuration passes on to commands (`inheritEnv`); the action's `execution.env` wins over them. */
  inheritedEnv?: Readonly<Record<string, string>> | undefined
  /** The API clients; the defaults (nomad-client.ts, docker-client.ts) unless a test puts its own in. */
  clients?: Partial<HttpClients> | undefined
}

/** The calls the http executor and the allocation check make, as the clients export them. */
export interface HttpClients {
  nomad: (target: NomadTarget, call: NomadCall, sink: (chunk: Buffer) => void, signal: AbortSignal) => Promise<void>
  docker: (socketPath: string, call: DockerCall, sinks: DemuxSinks, signal: AbortSignal) => Promise<void>
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
