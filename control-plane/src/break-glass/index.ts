/** Break-glass: running a gated action alone where policy allows, and the review items other approvers acknowledge. */
export { BreakGlass } from './break-glass-service.js'
export type { BreakGlassInput, BreakGlassDeps } from './break-glass-service.js'
export { ReviewStore, ReviewItemSchema, REVIEWS_BUCKET } from './review-store.js'
export type { ReviewItem } from './review-store.js'
export { BreakGlassBodySchema, ReviewListQuerySchema, ReviewIdParamsSchema, ReviewAckBodySchema } from './break-glass-schemas.js'
export { default as breakGlassRoutes } from './break-glass-routes.js'
