/** Plans: one request over many nodes, frozen, approved once over a signed root, rolled out in batches, results grouped. */
export { Plans } from './plans.js'
export type { PlansDeps } from './plans.js'
export { PlanRequestSchema, RolloutSchema, TargetsSchema, PlanStatusSchema, FINISHED_PLAN, HaltBodySchema, PlanListQuerySchema, PlanWaitQuerySchema } from './plan-schemas.js'
export type { Plan, PlanState, PlanRequest, PlanStatus } from './plan-schemas.js'
export type { PlanView, PlanGroupView } from './plan-view.js'
export { compileSelector, SelectorError } from './selector.js'
export { default as planRoutes } from './plan-routes.js'
export { planAsRun } from './plan-notice.js'
