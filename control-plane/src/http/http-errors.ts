/**
 * Coded HTTP errors. Every 4xx/5xx the API returns is one of these, rendered by
 * the single error handler as `{ error: { code, message, ...details } }`.
 */
import createError from '@fastify/error'

export const Unauthorized = createError('WRIT_ERR_UNAUTHORIZED', '%s', 401)
export const Forbidden = createError('WRIT_ERR_FORBIDDEN', '%s', 403)
export const ValidationFailed = createError('WRIT_ERR_VALIDATION', '%s', 400)
export const MalformedJson = createError('WRIT_ERR_MALFORMED_JSON', 'request body is not valid JSON: %s', 400)
export const BatchNotSupported = createError('WRIT_ERR_BATCH_NOT_SUPPORTED', 'JSON-RPC batches are not accepted (MCP removed them in revision 2025-06-18): send one request per POST', 400)
export const ForbiddenKey = createError('WRIT_ERR_FORBIDDEN_KEY', 'request body contains a forbidden key ("__proto__" or "constructor")', 400)
export const BodyTooLarge = createError('WRIT_ERR_BODY_TOO_LARGE', 'request body is larger than %d bytes', 413)
export const UnsupportedMediaType = createError('WRIT_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json', 415)
export const RouteNotFound = createError('WRIT_ERR_NOT_FOUND', 'no route %s %s', 404)
export const PageNotFound = createError('WRIT_ERR_NOT_FOUND', 'there is no page %s in the portal', 404)
export const FeatureNotConfigured = createError('WRIT_ERR_NOT_CONFIGURED', '%s', 404)
export const ActionNotFound = createError('WRIT_ERR_ACTION_NOT_FOUND', 'action "%s" is not in the catalog', 404)
export const NodeNotFound = createError('WRIT_ERR_NODE_NOT_FOUND', 'node "%s" has never reported a heartbeat', 404)
export const RunNotFound = createError('WRIT_ERR_RUN_NOT_FOUND', 'run "%s" does not exist or is not visible to you', 404)
export const BadArgs = createError('WRIT_ERR_BAD_ARGS', 'arguments do not satisfy the contract of "%s": %s', 400)
export const PolicyDenied = createError('WRIT_ERR_POLICY_DENIED', 'policy denies this run: %s', 403)
export const DigestMismatch = createError('WRIT_ERR_PACK_DIGEST_MISMATCH', '%s', 409)
export const ActionNotOnNode = createError('WRIT_ERR_ACTION_NOT_ON_NODE', 'node "%s" does not report pack "%s"', 409)
export const NotCancelable = createError('WRIT_ERR_RUN_NOT_CANCELABLE', 'run "%s" is already %s', 409)
export const EvidenceNotFound = createError('WRIT_ERR_EVIDENCE_NOT_FOUND', 'evidence run "%s" does not exist or is not one of your runs', 400)
export const NotPending = createError('WRIT_ERR_ALREADY_DECIDED', 'run "%s" is not waiting for approval: it is %s', 409)
export const ApprovalExpired = createError('WRIT_ERR_APPROVAL_EXPIRED', 'the approval window of run "%s" closed at %s; the run is expired', 409)
export const SelfApproval = createError('WRIT_ERR_SELF_APPROVAL', 'run "%s" was requested by %s; nobody decides their own run', 403)
export const NotAnApprover = createError('WRIT_ERR_NOT_AN_APPROVER', 'run "%s" needs an approver from %s; %s is in none of them', 403)
export const AlreadyApproved = createError('WRIT_ERR_ALREADY_APPROVED', '%s already approved run "%s"; it needs %d more approval(s) from other people', 409)
export const BindingMismatch = createError('WRIT_ERR_BINDING_MISMATCH', 'the decision names binding %s, but run "%s" is bound to %s: reload the run and decide on what it is now', 409)
export const BindingOutdated = createError('WRIT_ERR_BINDING_OUTDATED', 'run "%s" was requested before this control plane was upgraded: its binding is in a format runners no longer accept, so it cannot be approved; deny it and request it again', 409)
export const PasskeyRequired = createError('WRIT_ERR_PASSKEY_REQUIRED', 'approving run "%s" needs your passkey\'s signature over its binding (the approver registry asks for it: %s); approve it on its page: %s', 403)
export const PasskeyRejected = createError('WRIT_ERR_PASSKEY_REJECTED', '%s', 403)
export const SessionEnded = createError('WRIT_ERR_SESSION_ENDED', 'your portal session has ended (signed out, or older than its time limit); sign in again and retry', 401)
export const GroupsExpired = createError('WRIT_ERR_GROUPS_EXPIRED', 'your groups from %s were read more than %s ago; reload the page to sign in through %s again, then retry', 401)
export const CrossSiteRejected = createError('WRIT_ERR_CROSS_SITE', 'refused a %s from another site (%s): the portal takes forms from its own pages only', 403)
export const CsrfRejected = createError('WRIT_ERR_CSRF', 'the form is missing its CSRF token or the token is not valid for this session; reload the page and try again', 403)
export const RateLimited = createError('WRIT_ERR_RATE_LIMITED', 'rate limit exceeded: retry in %s', 429)
export const FailedAuthLimited = createError('WRIT_ERR_RATE_LIMITED', 'too many failed authentications from your address: retry in %d seconds', 429)
export const Unavailable = createError('WRIT_ERR_UNAVAILABLE', '%s', 503)
export const TooManyPending = createError('WRIT_ERR_TOO_MANY_PENDING', '%s already has %d run(s) waiting for approval, the most one requester may have (runs.max_pending_per_requester: %d): wait until some are decided, or cancel one, before asking again', 429)
export const TooManyActiveRuns = createError('WRIT_ERR_TOO_MANY_ACTIVE_RUNS', 'the control plane already holds %d unfinished runs, its bound (runs.max_active_runs: %d): no new run is accepted until some finish, are decided or expire', 503)
export const CancelForbidden = createError<'WRIT_ERR_CANCEL_FORBIDDEN', 403, [string, string, string, string]>('WRIT_ERR_CANCEL_FORBIDDEN', 'run "%s" was requested by %s and needs approvers from %s; %s is in none of them (nor in runs.cancel_any_groups), so cannot cancel it', 403)
export const PlanNotFound = createError('WRIT_ERR_PLAN_NOT_FOUND', 'plan "%s" does not exist or is not visible to you', 404)
export const TooManyTargets = createError('WRIT_ERR_TOO_MANY_TARGETS', 'the plan would have %d targets; a plan has at most %d (plans.max_targets): narrow the selector or split the list', 400)
export const NoTargets = createError('WRIT_ERR_NO_TARGETS', '%s', 422)
export const PlanFinished = createError('WRIT_ERR_PLAN_FINISHED', 'plan "%s" is already %s', 409)
export const OperationKeyReused = createError('WRIT_ERR_OPERATION_KEY_REUSED', 'operation "%s" was first sent with other arguments (%s): an idempotency key names one request; use a new key for a new request', 422)
export const OperationInProgress = createError('WRIT_ERR_OPERATION_IN_PROGRESS', 'operation "%s" is still being started by an earlier request: retry with the same key in a few seconds', 409)
export const BadOperationKey = createError('WRIT_ERR_BAD_OPERATION_KEY', '%s must be 1 to 200 letters, digits, "_", ".", ":" or "-"', 400)
export const OperationNotFound = createError('WRIT_ERR_OPERATION_NOT_FOUND', 'no operation "%s" was started by you (or it is older than runs.operation_ttl)', 404)
export const UnsafeText = createError('WRIT_ERR_UNSAFE_TEXT', '%s holds %s at character %d: control characters, line breaks and bidi overrides are refused in text people read, since a terminal or a page would show something other than what was sent', 400)
export const Frozen = createError('WRIT_ERR_FROZEN', '%s', 423)
export const NotFrozen = createError('WRIT_ERR_NOT_FROZEN', 'nothing is frozen for scope "%s"', 409)
export const UnknownPrincipal = createError('WRIT_ERR_UNKNOWN_PRINCIPAL', 'scope "%s" is neither "agents" nor a configured principal', 400)
export const BudgetExhausted = createError('WRIT_ERR_BUDGET_EXHAUSTED', '%s', 429)

export const BreakGlassNotAllowed = createError('WRIT_ERR_BREAK_GLASS_NOT_ALLOWED', 'run "%s" (%s) cannot be run by break-glass: %s', 403)
export const BreakGlassUnreviewed = createError('WRIT_ERR_BREAK_GLASS_UNREVIEWED', '%s already broke the glass on run "%s", and nobody has acknowledged its review %s yet: another approver must acknowledge it (POST /v1/reviews/:id/ack) before the next break-glass', 409)
export const ReviewNotFound = createError('WRIT_ERR_REVIEW_NOT_FOUND', 'review "%s" does not exist', 404)
export const ReviewAlreadyAcknowledged = createError('WRIT_ERR_REVIEW_ACKNOWLEDGED', 'review "%s" was already acknowledged by %s at %s', 409)
export const ReviewForbidden = createError('WRIT_ERR_REVIEW_FORBIDDEN', '%s', 403)

/** Extra fields rendered next to code and message (argument errors, the run id…). */
export function withDetails<E extends Error>(err: E, details: Record<string, unknown>): E {
  return Object.assign(err, { details })
}

export function detailsOf(err: unknown): Record<string, unknown> | undefined {
  const d = (err as { details?: unknown }).details
  return d && typeof d === 'object' ? d as Record<string, unknown> : undefined
}
