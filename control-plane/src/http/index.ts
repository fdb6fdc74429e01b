/**
 * HTTP plumbing shared by every feature: coded errors, edge parsing, the error
 * body, security headers. The app (`app.ts`) and the OpenAPI document
 * (`openapi.ts`) gather every feature, so they are not re-exported here: a
 * feature importing this plumbing never pulls in the other features through it.
 */
export {
  Unauthorized, Forbidden, ValidationFailed, MalformedJson, BatchNotSupported, ForbiddenKey, BodyTooLarge, UnsupportedMediaType, RouteNotFound, PageNotFound, FeatureNotConfigured, ActionNotFound, NodeNotFound, RunNotFound, BadArgs, PolicyDenied, DigestMismatch, ActionNotOnNode, NotCancelable, EvidenceNotFound, NotPending, ApprovalExpired, SelfApproval, NotAnApprover, AlreadyApproved, BindingMismatch, BindingOutdated, PasskeyRequired, PasskeyRejected, CsrfRejected, SessionEnded, GroupsExpired, CrossSiteRejected, RateLimited, FailedAuthLimited, Unavailable,
  TooManyPending, TooManyActiveRuns, CancelForbidden, UnsafeText, PlanNotFound, TooManyTargets, NoTargets, PlanFinished,
  OperationKeyReused, OperationInProgress, BadOperationKey, OperationNotFound,
  BreakGlassNotAllowed, BreakGlassUnreviewed, ReviewNotFound, ReviewAlreadyAcknowledged, ReviewForbidden,
  Frozen, NotFrozen, UnknownPrincipal, BudgetExhausted,
  withDetails, detailsOf,
} from './http-errors.js'
export { parseOrThrow, validationError, auditRejection } from './error-handler.js'
export { ErrorBodySchema } from './error-body.js'
export { requirePlainText } from './plain-text.js'
export type { WritDecorations } from './control-plane-plugin.js'
export { default as securityHeadersPlugin } from './security-headers.js'
export { FailedAuthLimiter, addressKey } from './failed-auth-limiter.js'
export type { Admission } from './failed-auth-limiter.js'
