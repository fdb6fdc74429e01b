/** MCP authorization: writ as the OAuth authorization server for its own `/mcp`. */
export { OAuthServer, MCP_SCOPE } from './oauth-server.js'
export type { Connection, TokenCheck } from './oauth-server.js'
export { default as oauthRoutes } from './oauth-routes.js'
export { OAUTH_BUCKET } from './oauth-store.js'
