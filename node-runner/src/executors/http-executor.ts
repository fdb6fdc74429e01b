/**
 * Runs a `kind: http` invocation against the Nomad API or the Docker Engine
 * API. The invocation's path and body were fixed by the pack and rendered by
 * the contract; this file only bounds the call in time, caps and hashes what
 * comes back, and maps the ending to an outcome status.
 */
import type { Invocation } from '@writ/packs'
import { ApiStatusError, ApiUnreachableError, describeError } from '../clients/api-errors.js'
import { DockerStreamError, callDocker, closeDockerClients } from '../clients/docker-client.js'
import { callNomad, closeNomadClients } from '../clients/nomad-client.js'
import type { ExecutionContext, ExecutionOutcome, Executor } from './execution-outcome.js'
import { OutputCapture } from './output-capture.js'

type HttpInvocation = Extract<Invocation, { kind: 'http' }>

/** Marks why the call's own abort controller fired. */
class CallEnded extends Error {
  constructor(readonly why: 'timed_out' | 'canceled') { super(why); this.name = 'CallEnded' }
}

/**
 * Executes one API call. Succeeds on a 2xx answer read to the end; a 4xx/5xx
 * answer is `failed` with the API's own text (`nomad: 404 alloc not found`)
 * and its body on stderr. There is no process, so `exitCode` is always null.
 */
export const executeHttp: Executor<'http'> = async (invocation: HttpInvocation, ctx: ExecutionContext): Promise<ExecutionOutcome> => {
  const stdout = new OutputCapture(ctx.limits.maxStdoutBytes, (t) => ctx.onChunk('stdout', t))
  const stderr = new OutputCapture(ctx.limits.maxStderrBytes, (t) => ctx.onChunk('stderr', t))
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new CallEnded('timed_out')), ctx.limits.timeoutMs)
  const onAbort = (): void => controller.abort(new CallEnded('canceled'))
  ctx.signal.addEventListener('abort', onAbort, { once: true })
  if (ctx.signal.aborted) onAbort()

  let status: ExecutionOutcome['status'] = 'succeeded'
  let error: string | undefined
  try {
    if (invocation.target === 'nomad') {
      await (ctx.clients?.nomad ?? callNomad)(ctx.nomad, { method: invocation.method, path: invocation.path, ...(invocation.body !== undefined ? { body: invocation.body } : {}) }, (c) => stdout.push(c), controller.signal)
    } else {
      await (ctx.clients?.docker ?? callDocker)(ctx.docker.socketPath, { method: invocation.method, path: invocation.path, stream: invocation.stream, ...(invocation.body !== undefined ? { body: invocation.body } : {}) },
        { stdout: (c) => stdout.push(c), stderr: (c) => stderr.push(c) }, controller.signal)
    }
  } catch (e) {
    const ended = controller.signal.aborted ? controller.signal.reason : undefined
    if (ended instanceof CallEnded) {
      status = ended.why
      error = ended.why === 'timed_out'
        ? `${invocation.target}: no complete answer within ${ctx.limits.timeoutMs} ms; request aborted`
        : `${invocation.target}: canceled; request aborted`
    } else {
      status = 'failed'
      // The clients' own errors already read "nomad: …"; anything else is named by its class.
      error = e instanceof ApiStatusError || e instanceof ApiUnreachableError || e instanceof DockerStreamError ? e.message : `${invocation.target}: ${describeError(e)}`
      // The API's own error text is also the run's stderr, so it is on the record with the output.
      if (e instanceof ApiStatusError && stderr.total === 0) stderr.push(Buffer.from(e.detail))
    }
  } finally {
    clearTimeout(timer)
    ctx.signal.removeEventListener('abort', onAbort)
  }
  return {
    status, exitCode: null, signal: null,
    stdout: stdout.text(), stderr: stderr.text(),
    stdoutTruncated: stdout.truncated, stderrTruncated: stderr.truncated,
    stdoutBytes: stdout.total, stderrBytes: stderr.total, stdoutSha256: stdout.sha256(),
    ...(error !== undefined ? { error } : {}),
  }
}

/** Closes the kept-alive connections of both clients; call on shutdown. */
export async function closeHttpClients(): Promise<void> {
  closeNomadClients()
  closeDockerClients()
}
