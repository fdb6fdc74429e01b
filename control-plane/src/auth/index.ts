/** Who is calling: principals from config, bearer-token authentication. */
export { PrincipalRegistry, hashToken, generateToken, bearerToken } from './principals.js'
export type { Principal } from './principals.js'
export { default as bearerAuth, principalOf, requireOperator } from './bearer-auth.js'
export type { AccessTokenCheck } from './bearer-auth.js'
export type { WritRequestDecorations } from './bearer-auth.js'
