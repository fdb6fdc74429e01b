/** The operator portal under `/ui`: pages, sign-in, the live socket, assets. */
export { default as portalPlugin } from './portal-plugin.js'
export type { PortalDecorations } from './portal-plugin.js'
export { SignInLinks, LINKS_BUCKET } from './sign-in-links.js'
export { PortalConfigError, sessionKey } from './portal-session.js'
