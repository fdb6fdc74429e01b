/**
 * Runs: create (optionally waiting for the end), read (long-poll), list,
 * output (cursor), cancel.
 */
import type { FastifyInstance } from 'fastify'
import { OutputQuerySchema, RunIdParamsSchema, RunListQuerySchema, RunRequestSchema, WaitQuerySchema } from './run-schemas.js'
import { durationMs } from '../config.js'
import { principalOf } from '../auth/index.js'
import { parseOrThrow } from '../http/index.js'
import { isTerminal } from './run-record.js'
import { runSummary } from './run-summary.js'
import { BadOperationKey } from '../http/index.js'
import { OPERATION_ID_RE } from './operations.js'
import type { Run } from './run-record.js'
import { newRunId } from './run-ids.js'

/** The `Idempotency-Key` header, when sent; a malformed one is a typed 400. */
function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  if (typeof header !== 'string' || !OPERATION_ID_RE.test(header)) throw new BadOperationKey('the Idempotency-Key header')
  return header
}

export default async function runRoutes(app: FastifyInstance) {
  const { runs, store, outputs, operations } = app.writ
  const maxWaitMs = durationMs(app.writ.config.runs.max_wait)
  const waitMs = (seconds: number): number => Math.min(seconds * 1000, maxWaitMs)
  // A run waiting for a person will not finish inside a request.
  const settled = (s: Parameters<typeof isTerminal>[0]): boolean => isTerminal(s) || s === 'pending_approval'

  app.post('/runs', async (req, reply) => {
    const principal = principalOf(req)
    const body = parseOrThrow(RunRequestSchema, req.body, 'body')
    const key = idempotencyKey(req.headers['idempotency-key'])
    let run: Run
    if (key === undefined) run = await runs.submit(principal, body)
    else {
      // The same key from the same principal: the same run, never a second dispatch (operations.ts).
      const { wait: _wait, ...request } = body
      const once = await operations.once(principal, key, 'run', request, {
        newId: newRunId,
        start: (runId) => runs.submit(principal, body, { runId }),
        existing: async (id) => (await store.current(id))?.run,
      })
      run = once.value
      if (once.replayed) reply.header('idempotent-replayed', 'true')
    }
    if (!settled(run.status) && body.wait > 0) run = (await store.waitFor(run.id, (r) => settled(r.status), waitMs(body.wait))) ?? run
    req.log.info({ runId: run.id, action: run.action, node: run.node_name, status: run.status }, 'run requested')
    reply.code(isTerminal(run.status) ? 200 : 202)
    // The record as stored is already JSON (the same JSON.stringify the reply would do); send those bytes when they can be.
    const json = runs.presentedJson(run)
    return json !== undefined ? reply.type('application/json; charset=utf-8').send(json) : reply.send(runs.present(run))
  })

  app.get('/runs/:id', async (req, reply) => {
    const principal = principalOf(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    const { wait } = parseOrThrow(WaitQuerySchema, req.query, 'query')
    let run = await runs.get(principal, id)
    // A long-poll waits through approval too: it answers at the end, or when `wait` runs out.
    if (!isTerminal(run.status) && wait > 0) run = (await store.waitFor(id, (r) => isTerminal(r.status), waitMs(wait))) ?? run
    // The run in one line, as every surface shows it (the CLI's `writ show` and `approve` print it).
    return reply.code(200).send({ ...runs.present(run), summary: runSummary(run, app.writ.catalog) })
  })

  app.get('/runs', async (req) => {
    const principal = principalOf(req)
    const q = parseOrThrow(RunListQuerySchema, req.query, 'query')
    const requester = principal.kind === 'operator' ? undefined : principal.id
    return { runs: store.list({ session_id: q.session_id, node: q.node, status: q.status, action: q.action, requester }, q.limit) }
  })

  app.get('/runs/:id/output', async (req) => {
    const principal = principalOf(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    const q = parseOrThrow(OutputQuerySchema, req.query, 'query')
    let run = await runs.get(principal, id)
    let live = outputs.since(id, q.cursor)
    if (!isTerminal(run.status) && live.chunks.length === 0 && q.wait > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs(q.wait))
        const stopChunks = outputs.follow(id, () => done())
        const stopRun = store.onChange((r) => { if (r.id === id && isTerminal(r.status)) done() })
        function done(): void { clearTimeout(timer); stopChunks(); stopRun(); resolve() }
      })
      run = await runs.get(principal, id)
      live = outputs.since(id, q.cursor)
    }
    const done = isTerminal(run.status)
    const last = live.chunks.at(-1)
    return {
      run_id: id, status: run.status, done, chunks: live.chunks,
      ...(done && run.result ? { stdout: run.result.stdout, stderr: run.result.stderr } : {}),
      next_cursor: last ? last.seq + 1 : q.cursor,
    }
  })

  app.post('/runs/:id/cancel', async (req) => {
    const principal = principalOf(req)
    const { id } = parseOrThrow(RunIdParamsSchema, req.params, 'params')
    return runs.present(await runs.cancel(principal, id))
  })
}
