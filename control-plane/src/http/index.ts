/** HTTP plumbing shared by every feature: coded errors, edge parsing, the error body, OpenAPI, the app. */
export {
  Unauthorized, Forbidden, ValidationFailed, MalformedJson, ForbiddenKey, BodyTooLarge, UnsupportedMediaType, RouteNotFound, ActionNotFound, NodeNotFound, RunNotFound, BadArgs, PolicyDenied, DigestMismatch, ActionNotOnNode, NotCancelable, EvidenceNotFound, NotPending, ApprovalExpired, SelfApproval, NotAnApprover, AlreadyApproved, BindingMismatch, PasskeyRequired, PasskeyRejected, CsrfRejected, RateLimited, Unavailable,
  withDetails, detailsOf,
} from './http-errors.js'
export { parseOrThrow, validationError, auditRejection } from './error-handler.js'
export { ErrorBodySchema } from './error-body.js'
export { openApiDocument } from './openapi.js'
export { buildApp, createLogger, REDACT_PATHS } from './app.js'
export type { BuildOptions } from './app.js'
export type { WritDecorations } from './control-plane-plugin.js'
export { default as securityHeadersPlugin } from './security-headers.js'
