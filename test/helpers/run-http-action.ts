/**
 * Runs a stock `kind: http` action the way the runner does: the pack contract
 * validates and renders the arguments (prepareInvocation), the declared
 * limits apply, and the http executor performs the call. Used by the Nomad
 * and Docker API tests against their doubles.
 */
import { join } from 'node:path'
import { PackCatalog, prepareInvocation, type ArgError } from '@writ/packs'
import { executeHttp } from '../../node-runner/dist/executors/http-executor.js'
import type { ExecutionOutcome } from '../../node-runner/dist/executors/execution-outcome.js'
import { REPO_ROOT } from '../doubles/fixtures-dir.js'

export const stockCatalog = PackCatalog.fromDirs([join(REPO_ROOT, 'packs', 'stock')])

export interface HttpRunOptions {
  nomad?: { addr: string, token?: string | undefined }
  dockerSocket?: string
  /** Narrow the declared limits (never widen them). */
  timeoutMs?: number
  maxStdoutBytes?: number
  maxStderrBytes?: number
  signal?: AbortSignal
}

export type HttpRun =
  | { refused: true, errors: ArgError[] }
  | { refused: false, outcome: ExecutionOutcome, chunks: { stdout: string, stderr: string } }

export async function runHttpAction(actionId: string, args: Record<string, unknown>, opts: HttpRunOptions): Promise<HttpRun> {
  const hit = stockCatalog.lookup(actionId)
  if (!hit.ok) throw new Error(hit.message)
  const prepared = prepareInvocation(hit.action.spec, args)
  if (!prepared.ok) return { refused: true, errors: prepared.errors }
  const inv = prepared.invocation
  if (inv.kind !== 'http') throw new Error(`${actionId} is not an http action`)
  const limits = PackCatalog.limits(hit.action, { timeout_ms: opts.timeoutMs, max_stdout_bytes: opts.maxStdoutBytes })
  const chunks = { stdout: '', stderr: '' }
  const outcome = await executeHttp(inv, {
    limits: { ...limits, maxStderrBytes: Math.min(limits.maxStderrBytes, opts.maxStderrBytes ?? Infinity) },
    signal: opts.signal ?? new AbortController().signal,
    onChunk: (stream, data) => { chunks[stream] += data },
    nomad: opts.nomad ?? { addr: 'http://127.0.0.1:1' },
    docker: { socketPath: opts.dockerSocket ?? '/nonexistent/docker.sock' },
  })
  return { refused: false, outcome, chunks }
}

/** The outcome of a run that must have passed validation. */
export function outcomeOf(run: HttpRun): ExecutionOutcome & { chunks: { stdout: string, stderr: string } } {
  if (run.refused) throw new Error(`arguments refused: ${run.errors.map((e) => e.message).join('; ')}`)
  return { ...run.outcome, chunks: run.chunks }
}
