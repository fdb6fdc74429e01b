/** Standing grants: approvals given in advance, bounded in time and uses (DESIGN.md "Standing grants, freeze, budgets"). */
export { GrantService } from './grant-service.js'
export type { GrantServiceDeps, GrantPasskeys } from './grant-service.js'
export type { GrantCover, CoverRequest, PlanCoverRequest } from './grant-cover.js'
export { GrantStore, GRANTS_BUCKET } from './grant-store.js'
export {
  GrantRequestSchema, GrantRecordSchema, GrantUseSchema, GrantStatusSchema, ShownGrantSchema, GrantListQuerySchema, GrantApproveBodySchema, GrantRevokeBodySchema,
} from './grant-schemas.js'
export type { GrantRecord, GrantRequest, GrantUse, GrantStatus, ShownGrant } from './grant-schemas.js'
export { default as grantRoutes } from './grant-routes.js'
