/**
 * The MCP server behind `/mcp`, on the official TypeScript SDK v2
 * (`createMcpHandler`): one short-lived server instance per HTTP request, so no
 * session lives in any replica and any instance answers any request.
 *
 * Revisions: 2026-07-28 (per-request, no sessions and no `Mcp-Session-Id`)
 * and, for clients that open with `initialize`, 2025-11-25, 2025-06-18,
 * 2025-03-26, 2024-11-05 and 2024-10-07 through a stateless transport per
 * request with an event store (legacy-http.ts: priming events, `retry`,
 * resuming a broken stream).
 *
 * The low-level `Server` is used rather than `McpServer`: `McpServer` answers
 * schema violations and unknown tools itself, before any code of ours runs,
 * so they could be neither typed with our codes nor audited.
 */
import { Server, createMcpHandler, isLegacyRequest, type AuthInfo, type McpRequestContext } from '@modelcontextprotocol/server'
import type { Logger } from 'pino'
import type { Principal } from '../auth/index.js'
import { legacyHandler } from './legacy-http.js'
import type { McpTools } from './mcp-tools.js'
import type { SseEvents } from './sse-events.js'
import { SERVER_INSTRUCTIONS, TOOLS } from './tool-catalog.js'

/** Reported to clients as `serverInfo`. */
export const SERVER_INFO = { name: 'writ', title: 'writ: declared operations on a Nomad fleet', version: '0.1.0' }

/** Carries the authenticated principal into the SDK (the token itself never goes in). */
export function authInfoFor(principal: Principal): AuthInfo {
  return { token: '', clientId: principal.id, scopes: [], extra: { principal } }
}

function principalOf(auth: AuthInfo | undefined): Principal {
  const p = auth?.extra?.principal as Principal | undefined
  // The route authenticates before the handler runs; a request without a principal never reaches here.
  if (!p) throw new Error('MCP request without an authenticated principal')
  return p
}

/** `/mcp` as a fetch-shaped handler: 2025-era requests to legacy-http.ts, the rest to the SDK's 2026-07-28 entry. */
export interface WritMcpHandler {
  fetch: (request: Request, opts: { authInfo: AuthInfo, parsedBody?: unknown }) => Promise<Response>
  close: () => Promise<void>
}

export function createWritMcpHandler(tools: McpTools, log: Logger, sse: { events: SseEvents, retryMs: number }): WritMcpHandler {
  const factory = (ctx: McpRequestContext): Server => {
    const principal = principalOf(ctx.authInfo)
    const server = new Server(SERVER_INFO, { capabilities: { tools: { listChanged: false } }, instructions: SERVER_INSTRUCTIONS })
    server.setRequestHandler('tools/list', () => ({ tools: TOOLS }))
    server.setRequestHandler('tools/call', async (request) => server.projectCallToolResult(await tools.call(principal, request.params.name, request.params.arguments), undefined))
    return server
  }
  const onerror = (err: Error): void => log.warn({ err: err.message }, 'MCP request refused by the SDK')
  const modern = createMcpHandler(factory, { legacy: 'reject', onerror })
  const legacy = legacyHandler(factory, { ...sse, ownerOf: (auth) => principalOf(auth).id, onerror })
  return {
    fetch: async (request, opts) => (await isLegacyRequest(request, opts.parsedBody)) ? legacy(request, opts) : modern.fetch(request, opts),
    close: () => modern.close(),
  }
}
