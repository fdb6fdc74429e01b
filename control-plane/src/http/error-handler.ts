/**
 * The one error handler: every failure leaves as `{ error: { code, message } }`
 * with a `WRIT_ERR_*` code. Also owns the JSON body parser, which refuses
 * `__proto__`, `constructor` and `prototype` keys anywhere in a body.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodError, ZodType } from 'zod'
import { BodyTooLarge, ForbiddenKey, MalformedJson, RouteNotFound, Unavailable, UnsupportedMediaType, ValidationFailed, detailsOf, withDetails } from './http-errors.js'
import { isTransientJetStreamError } from '../nats/index.js'
import { logSafePath } from './request-log.js'

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

function hasForbiddenKey(v: unknown, depth = 0): boolean {
  if (depth > 64 || v === null || typeof v !== 'object') return false
  if (Array.isArray(v)) return v.some((x) => hasForbiddenKey(x, depth + 1))
  for (const k of Object.keys(v)) {
    if (FORBIDDEN_KEYS.has(k) || hasForbiddenKey((v as Record<string, unknown>)[k], depth + 1)) return true
  }
  return false
}

/**
 * Where a body stopped being JSON, by position only. The parser's own message
 * quotes a slice of the body, and a body can hold a secret: that message is
 * never answered, logged or audited.
 */
export function whereJsonBreaks(text: string, err: Error): string {
  const position = errorPosition(text, err.message) ?? firstBadCharacter(text)
  if (position >= text.length) return `it ends before the JSON is complete (after ${text.length} characters)`
  const before = text.slice(0, position)
  const line = before.split('\n').length
  const column = position - before.lastIndexOf('\n')
  return `it breaks at character ${position + 1} (line ${line}, column ${column})`
}

function errorPosition(text: string, message: string): number | undefined {
  const m = /at position (\d+)/.exec(message)
  if (m) return Number(m[1])
  return /Unexpected end of JSON input/.test(message) ? text.length : undefined
}

/**
 * The parser names no position for some errors ("Unexpected token 'x', …"):
 * the longest prefix that fails only by ending early ends where the body
 * breaks, found by bisection (a few parses of at most a body's size).
 */
function firstBadCharacter(text: string): number {
  const clean = (n: number): boolean => {
    try { JSON.parse(text.slice(0, n)); return true } catch (e) {
      const at = errorPosition(text.slice(0, n), (e as Error).message)
      return at !== undefined && at >= n
    }
  }
  let lo = 0
  let hi = text.length
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (clean(mid)) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** Parses `data` with `schema` or throws a WRIT_ERR_VALIDATION error listing each issue. */
export function parseOrThrow<T>(schema: ZodType<T>, data: unknown, where: 'body' | 'query' | 'params' | 'message'): T {
  const r = schema.safeParse(data)
  if (r.success) return r.data
  throw validationError(r.error, where)
}

export function validationError(error: ZodError, where: string): Error {
  const issues = error.issues.map((i) => ({ path: i.path.map(String).join('.'), code: i.code, message: i.message }))
  const summary = issues.map((i) => `${i.path || where}: ${i.message}`).join('; ')
  return withDetails(new ValidationFailed(`invalid ${where}: ${summary}`), { issues })
}

export async function auditRejection(req: FastifyRequest, code: string, message: string, details: Record<string, unknown> | undefined): Promise<void> {
  const principal = req.principal as NonNullable<FastifyRequest['principal']>
  const body = req.body !== null && typeof req.body === 'object' ? req.body as Record<string, unknown> : {}
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 200) : undefined)
  const action = str(body.action)
  const node = str(body.node)
  const reason = str(body.reason)
  // A refused decision on a run belongs to that run's record, even when it was refused before the run was read.
  const params = req.params as { id?: unknown } | undefined
  const runId = typeof details?.run_id === 'string' ? details.run_id
    : /\/runs\/:id(\/|$)/.test(req.routeOptions.url ?? '') && typeof params?.id === 'string' && /^[A-Za-z0-9_-]{8,64}$/.test(params.id) ? params.id : undefined
  req.server.writ.metrics.rejected.inc({ code })
  await req.server.writ.audit.append({
    type: 'request.rejected', actor: { id: principal.id, kind: principal.kind },
    ...(action ? { action } : {}), ...(node ? { node } : {}),
    ...(runId ? { run_id: runId } : {}),
    data: { method: req.method, route: req.routeOptions.url ?? logSafePath(req.url), code, message, ...(reason ? { reason } : {}), ...(details ? { details } : {}) },
  })
}

export default fp(async function errorHandler(app: FastifyInstance, opts: { bodyLimit: number }) {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    const text = body as string
    if (text.trim() === '') return done(new MalformedJson('the body is empty'), undefined)
    let value: unknown
    try { value = JSON.parse(text) } catch (e) { return done(new MalformedJson(whereJsonBreaks(text, e as Error)), undefined) }
    if (hasForbiddenKey(value)) return done(new ForbiddenKey(), undefined)
    done(null, value)
  })

  // The message is logged too: the path only, with a one-time sign-in code masked.
  app.setNotFoundHandler((req) => { throw new RouteNotFound(req.method, logSafePath(req.url)) })

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    let e: FastifyError = err
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new BodyTooLarge(opts.bodyLimit) as FastifyError
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new UnsupportedMediaType() as FastifyError
    else if (err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') e = new MalformedJson('its length does not match the Content-Length header') as FastifyError
    else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') e = new MalformedJson('the body is empty') as FastifyError
    else if (!String(err.code ?? '').startsWith('WRIT_ERR_') && isTransientJetStreamError(err)) {
      e = new Unavailable('NATS JetStream is not reachable right now; retry shortly') as FastifyError
      req.log.warn({ err }, 'JetStream unavailable')
    }
    const known = typeof e.code === 'string' && e.code.startsWith('WRIT_ERR_')
    const status = known ? e.statusCode ?? 500 : (e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500)
    // A full run store is a refusal of this request, not a failure of the control plane.
    const refusal = (status >= 400 && status < 500) || e.code === 'WRIT_ERR_TOO_MANY_ACTIVE_RUNS'
    if (!refusal) req.log.error({ err }, 'request failed')
    else req.log.info({ code: e.code, status }, e.message)
    const code = known ? e.code : status >= 500 ? 'WRIT_ERR_INTERNAL' : 'WRIT_ERR_BAD_REQUEST'
    const message = status >= 500 && !known ? 'internal error' : e.message
    // Refusals of an authenticated caller are on the record; rate-limit hits are only counted.
    if (req.principal && refusal && code !== 'WRIT_ERR_RATE_LIMITED') {
      await auditRejection(req, code, message, detailsOf(e)).catch((auditErr: unknown) => req.log.error({ err: auditErr }, 'cannot audit a rejected request'))
    }
    // A refusal that ends at a known time (a spent budget) says when, as a 429 should.
    const retryAfter = detailsOf(e)?.retry_after_s
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter))
    return reply.code(status).type('application/json').send({ error: { code, message, ...detailsOf(e) } })
  })
}, { name: 'writ-error-handler' })
