/** Approvals: deciding runs that wait for people, their expiry, and the impact preview approvers see. */
export { ApprovalService } from './approval-service.js'
export type { ApprovalSummary, DecisionInput, PendingFilter, PendingPage, ApprovalServiceDeps } from './approval-service.js'
export { ImpactPreview, previewSteps } from './impact-preview.js'
export type { PreviewStep } from './impact-preview.js'
export { ApproveBodySchema, DenyBodySchema, ApprovalListQuerySchema, ApprovalSummarySchema } from './approval-schemas.js'
export { default as approvalRoutes } from './approval-routes.js'
