/** MCP: the agents' front door at `/mcp` (tools, their schemas, the route). */
export { default as mcpRoutes } from './mcp-routes.js'
export { SERVER_INFO } from './mcp-server.js'
export { TOOLS, TOOL_NAMES, SERVER_INSTRUCTIONS } from './tool-catalog.js'
export type { ToolName } from './tool-catalog.js'
