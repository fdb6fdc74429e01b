/**
 * The MCP server behind `/mcp`, on the official TypeScript SDK v2
 * (`createMcpHandler`): one short-lived server instance per HTTP request, so no
 * session lives in any replica and any instance answers any request.
 *
 * Revisions: 2026-07-28 (per-request, no sessions and no `Mcp-Session-Id`)
 * and, through the SDK's stateless fallback for clients that open with
 * `initialize`, 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05 and 2024-10-07.
 *
 * The low-level `Server` is used rather than `McpServer`: `McpServer` answers
 * schema violations and unknown tools itself, before any code of ours runs,
 * so they could be neither typed with our codes nor audited.
 */
import { Server, createMcpHandler, type AuthInfo, type McpHttpHandler } from '@modelcontextprotocol/server'
import type { Logger } from 'pino'
import type { Principal } from '../auth/index.js'
import type { McpTools } from './mcp-tools.js'
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

export function createWritMcpHandler(tools: McpTools, log: Logger): McpHttpHandler {
  return createMcpHandler((ctx) => {
    const principal = principalOf(ctx.authInfo)
    const server = new Server(SERVER_INFO, { capabilities: { tools: { listChanged: false } }, instructions: SERVER_INSTRUCTIONS })
    server.setRequestHandler('tools/list', () => ({ tools: TOOLS }))
    server.setRequestHandler('tools/call', async (request) => server.projectCallToolResult(await tools.call(principal, request.params.name, request.params.arguments), undefined))
    return server
  }, {
    legacy: 'stateless',
    onerror: (err) => log.warn({ err: err.message }, 'MCP request refused by the SDK'),
  })
}
