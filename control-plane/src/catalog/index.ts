/** The authoritative action catalog as the API shows it (`/v1/actions`). */
export { default as catalogRoutes } from './catalog-routes.js'
export { ActionIdParamsSchema, ActionListQuerySchema, ActionSummarySchema, ActionDetailSchema } from './catalog-schemas.js'
