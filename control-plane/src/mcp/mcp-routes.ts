/**
 * `/mcp`: MCP over Streamable HTTP. Registered beside `/v1` under the same
 * bearer authentication and the same per-principal rate limit (one budget for
 * both), then: Host/Origin checked against DNS rebinding, the JSON body parsed
 * here (size limit, forbidden keys), and the request handed to the SDK's
 * handler with the principal. Failures before the SDK answer as JSON-RPC
 * errors carrying our `WRIT_ERR_*` code in `error.data.code`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { principalOf } from '../auth/index.js'
import { durationMs } from '../config.js'
import { BatchNotSupported, BodyTooLarge, ForbiddenKey, MalformedJson, UnsupportedMediaType, detailsOf } from '../http/index.js'
import { CatalogTools } from './catalog-tools.js'
import { recordRejection } from './mcp-audit.js'
import { authInfoFor, createWritMcpHandler } from './mcp-server.js'
import { McpTools } from './mcp-tools.js'
import { allowedNames, checkHostAndOrigin } from './origin-guard.js'
import { RunTools } from './run-tools.js'
import { PlanTools } from './plan-tools.js'
import { SseEvents } from './sse-events.js'

/** POST SSE streams whose events one instance keeps for reconnects (the newest; each holds one call's messages). */
const SSE_STREAMS_KEPT = 1000

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

function hasForbiddenKey(v: unknown, depth = 0): boolean {
  if (depth > 64 || v === null || typeof v !== 'object') return false
  if (Array.isArray(v)) return v.some((x) => hasForbiddenKey(x, depth + 1))
  return Object.keys(v).some((k) => FORBIDDEN_KEYS.has(k) || hasForbiddenKey((v as Record<string, unknown>)[k], depth + 1))
}

/** JSON-RPC error codes for the refusals answered before the SDK sees a request. */
function rpcCode(code: string, status: number): number {
  if (code === 'WRIT_ERR_MALFORMED_JSON' || code === 'WRIT_ERR_FORBIDDEN_KEY') return -32700
  if (code === 'WRIT_ERR_BATCH_NOT_SUPPORTED') return -32600
  if (status === 401) return -32001
  if (status >= 500) return -32603
  return -32000
}

/** The JSON-RPC id of the request, when its body had one. */
function rpcId(body: unknown): string | number | null {
  const id = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { id?: unknown }).id : undefined
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

/** The 401's challenge: with MCP authorization on, it names the protected-resource metadata (RFC 9728) a client discovers the authorization server from. */
function challenge(req: FastifyRequest, resourceMetadataUrl: string | undefined): string {
  if (!resourceMetadataUrl) return 'Bearer realm="writ"'
  const presented = req.headers.authorization !== undefined
  return `Bearer resource_metadata="${resourceMetadataUrl}", scope="mcp"${presented ? ', error="invalid_token"' : ''}`
}

export default async function mcpRoutes(app: FastifyInstance, opts: { resourceMetadataUrl?: string | undefined } = {}) {
  const cp = app.writ
  const { config } = cp
  const allowed = allowedNames(config)
  const catalogTools = new CatalogTools({ catalog: cp.catalog, fleet: cp.fleet, policy: cp.policy, scope: cp.scope })
  const runTools = new RunTools({
    runs: cp.runs, store: cp.store, outputs: cp.outputs, fleet: cp.fleet, catalogTools, runUrl: cp.runUrl,
    budget: config.mcp.max_output_chars, maxWaitMs: durationMs(config.runs.max_wait),
    planTools: new PlanTools(cp.plans, config.mcp.max_output_chars, durationMs(config.runs.max_wait)),
    plans: cp.plans, operations: cp.operations,
  })
  const tools = new McpTools({ catalogTools, runTools, audit: cp.audit, metrics: cp.metrics, log: cp.log })
  // A broken stream's answer waits here for the reconnect at least as long as a call may wait.
  const events = new SseEvents({ maxStreams: SSE_STREAMS_KEPT, ttlMs: 2 * durationMs(config.runs.max_wait) })
  const handler = createWritMcpHandler(tools, cp.log, { events, retryMs: durationMs(config.mcp.sse_retry) })
  app.addHook('onClose', async () => { await handler.close() })

  const bodyLimit = config.limits.body_bytes
  // JSON only (Streamable HTTP is JSON-RPC over JSON); anything else is a typed 415 before the SDK sees it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    let value: unknown
    try { value = JSON.parse(body as string) } catch (e) { return done(new MalformedJson((e as Error).message), undefined) }
    if (hasForbiddenKey(value)) return done(new ForbiddenKey(), undefined)
    // A batch would be one request to the rate limit and to the audit, and many calls to the tools.
    if (Array.isArray(value)) return done(new BatchNotSupported(), undefined)
    done(null, value)
  })

  app.setErrorHandler(async (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    let e: FastifyError = err
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new BodyTooLarge(bodyLimit) as FastifyError
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new UnsupportedMediaType() as FastifyError
    else if (err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') e = new MalformedJson(err.message) as FastifyError
    const known = typeof e.code === 'string' && e.code.startsWith('WRIT_ERR_')
    const status = known ? e.statusCode ?? 500 : 500
    const code = known ? e.code : 'WRIT_ERR_INTERNAL'
    const message = known ? e.message : 'internal error'
    if (status >= 500) req.log.error({ err }, 'MCP request failed')
    // Refusals of an authenticated caller are on the record; rate-limit hits are only counted.
    if (req.principal && status >= 400 && status < 500 && status !== 429) {
      await recordRejection({ audit: cp.audit, metrics: cp.metrics, log: cp.log }, req.principal, { code, message, args: req.body, details: detailsOf(e) })
    }
    if (status === 401) reply.header('www-authenticate', challenge(req, opts.resourceMetadataUrl))
    return reply.code(status).type('application/json').send({
      jsonrpc: '2.0', id: rpcId(req.body), error: { code: rpcCode(code, status), message, data: { code, ...detailsOf(e) } },
    })
  })

  // After authentication (the parent scope's hook), so a refusal of a known caller is audited.
  app.addHook('onRequest', async (req) => checkHostAndOrigin(req, allowed))

  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: '/',
    prefixTrailingSlash: 'no-slash',
    handler: async (req, reply) => {
      const principal = principalOf(req)
      const headers = new Headers()
      for (const [name, value] of Object.entries(req.headers)) {
        // The SDK takes identity from authInfo; the token and cookies stay here.
        if (name === 'authorization' || name === 'cookie' || value === undefined) continue
        headers.set(name, Array.isArray(value) ? value.join(', ') : value)
      }
      const aborted = new AbortController()
      reply.raw.once('close', () => { if (!reply.raw.writableEnded) aborted.abort() })
      const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, { method: req.method, headers, signal: aborted.signal })
      const response = await handler.fetch(request, { authInfo: authInfoFor(principal), ...(req.body !== undefined ? { parsedBody: req.body } : {}) })
      return reply.send(response)
    },
  })
}
