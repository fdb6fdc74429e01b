/**
 * `buildApp(config)` builds the Fastify app in front of a control plane and
 * returns it without listening (`main.ts` listens; tests `inject`).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import websocket from '@fastify/websocket'
import { pino, type Logger } from 'pino'
import { REDACTED } from '@writ/packs'
import type { Config } from '../config.js'
import { startControlPlane, type ControlPlane } from '../control-plane.js'
import { approvalRoutes } from '../approvals/index.js'
import { breakGlassRoutes } from '../break-glass/index.js'
import { auditRoutes } from '../audit/index.js'
import { brakeRoutes } from '../brakes/index.js'
import { bearerAuth } from '../auth/index.js'
import { catalogRoutes } from '../catalog/index.js'
import { nodeRoutes } from '../fleet/index.js'
import { grantRoutes } from '../grants/index.js'
import { mcpRoutes } from '../mcp/index.js'
import { OAuthServer, oauthRoutes } from '../oauth/index.js'
import { approverRoutes } from '../passkeys/index.js'
import { planRoutes } from '../plans/index.js'
import { durationMs } from '../config.js'
import { portalPlugin, sessionKey } from '../portal/index.js'
import { runRoutes, streamRoutes } from '../runs/index.js'
import controlPlanePlugin from './control-plane-plugin.js'
import errorHandler from './error-handler.js'
import { FailedAuthLimiter } from './failed-auth-limiter.js'
import { RateLimited } from './http-errors.js'
import { openApiDocument } from './openapi.js'
import opsRoutes from './ops-routes.js'
import { serializeRequest } from './request-log.js'
import securityHeaders from './security-headers.js'

/** Paths pino must never print: tokens, cookies, signing material. */
export const REDACT_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'authorization', 'token', '*.token', 'config.nats.pass', 'config.nats.token', 'config.notify.slack.webhook_url', 'webhook_url', 'config.nomad.token', 'binding_salt', '*.binding_salt', 'run.binding_salt']

export function createLogger(config: Pick<Config, 'log'>, destination?: NodeJS.WritableStream): Logger {
  return pino({ level: config.log.level, redact: { paths: REDACT_PATHS, censor: REDACTED } }, destination as pino.DestinationStream | undefined)
}

export interface BuildOptions {
  logger?: Logger
  /** A control plane already started (a dev stack or a test sharing one); not closed with the app. */
  controlPlane?: ControlPlane
  /** Where approval messages are printed when no Slack webhook is configured. */
  print?: (line: string) => void
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const log = opts.logger ?? createLogger(config)
  const controlPlane = opts.controlPlane ?? await startControlPlane(config, log, { ...(opts.print ? { print: opts.print } : {}) })
  const app = Fastify({
    // Whatever logger a caller passes, request lines go through our serializer (no query strings, no sign-in codes).
    loggerInstance: log.child({}, { serializers: { req: serializeRequest } }),
    bodyLimit: config.limits.body_bytes,
    trustProxy: false,
    return503OnClosing: true,
  }) as unknown as FastifyInstance
  try {
    await app.register(errorHandler, { bodyLimit: config.limits.body_bytes })
    await app.register(controlPlanePlugin, { controlPlane, owned: !opts.controlPlane })
    await app.register(securityHeaders, { helmet: { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } }, crossOriginResourcePolicy: { policy: 'same-origin' } } })
    await app.register(websocket, { options: { maxPayload: 64 * 1024 } })
    app.addHook('onResponse', async (req, reply) => {
      controlPlane.metrics.http.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) })
    })
    await app.register(opsRoutes)
    // One budget of failed authentications per address for the portal, /v1 and /mcp.
    const failedAuth = new FailedAuthLimiter(config.limits.failed_auth_per_minute, log)
    // MCP authorization: writ as the OAuth authorization server for its own /mcp (config `oauth`).
    const oauth = config.oauth
      ? await OAuthServer.open({ ...config, oauth: config.oauth }, controlPlane.principals, controlPlane.nc, sessionKey(config.portal.session_key_file).key, log)
      : undefined
    if (oauth) await app.register(oauthRoutes, { oauth, requestsPerMinute: config.oauth?.requests_per_minute ?? 300 })
    await app.register(portalPlugin, { failedAuth, oauth })
    app.get('/openapi.json', async () => openApiDocument(config.public_url))
    // `/v1` and `/mcp` share authentication and one rate-limit budget per principal.
    await app.register(async (api) => {
      await api.register(bearerAuth, { failedAuth, oauth })
      await api.register(rateLimit, {
        hook: 'preHandler',
        timeWindow: 60_000,
        keyGenerator: (req) => req.principal?.id ?? req.ip,
        max: (req) => req.principal?.ratePerMinute ?? config.limits.rate_per_minute,
        errorResponseBuilder: (_req, ctx) => new RateLimited(ctx.after),
      })
      await api.register(async (v1) => {
        await v1.register(nodeRoutes)
        await v1.register(catalogRoutes)
        await v1.register(runRoutes)
        await v1.register(planRoutes, { plans: controlPlane.plans, maxWaitMs: durationMs(config.runs.max_wait) })
        await v1.register(approvalRoutes)
        await v1.register(grantRoutes, { grants: controlPlane.grants })
        await v1.register(breakGlassRoutes, { breakGlass: controlPlane.breakGlass, runs: controlPlane.runs })
        await v1.register(brakeRoutes, {
          brakes: controlPlane.brakes,
          // Runs a lifted freeze held leave now, not at the next sweep after the dispatch grace.
          releaseHeld: () => { controlPlane.approvals.sweep(0).catch((err: unknown) => log.error({ err }, 'releasing held runs failed')) },
        })
        await v1.register(approverRoutes)
        await v1.register(auditRoutes)
        await v1.register(streamRoutes)
      }, { prefix: '/v1' })
      await api.register(mcpRoutes, { prefix: '/mcp', resourceMetadataUrl: oauth?.resourceMetadataUrl })
    })
    await app.ready()
  } catch (err) {
    await app.close().catch(() => {})
    if (!opts.controlPlane) await controlPlane.close()
    throw err
  }
  return app
}
