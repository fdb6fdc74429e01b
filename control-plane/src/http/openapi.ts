/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the handlers
 * parse with (`z.toJSONSchema`), so the document cannot drift from the code.
 */
import { z } from 'zod'
import { ApprovalListQuerySchema, ApprovalSummarySchema, ApproveBodySchema, DenyBodySchema } from '../approvals/index.js'
import { ActionDetailSchema, ActionListQuerySchema, ActionSummarySchema } from '../catalog/index.js'
import { BreakGlassBodySchema, ReviewAckBodySchema, ReviewItemSchema, ReviewListQuerySchema } from '../break-glass/index.js'
import { AuditQuerySchema } from '../audit/index.js'
import { FreezeRequestSchema, FreezeSchema, UnfreezeQuerySchema } from '../brakes/index.js'
import { ErrorBodySchema } from './error-body.js'
import { NodeSchema } from '../fleet/index.js'
import { GrantApproveBodySchema, GrantListQuerySchema, GrantRequestSchema, GrantRevokeBodySchema, ShownGrantSchema } from '../grants/index.js'
import { HaltBodySchema, PlanListQuerySchema, PlanRequestSchema, PlanWaitQuerySchema } from '../plans/index.js'
import { OutputQuerySchema, RunListQuerySchema, RunOutputSchema, RunRequestSchema, ShownRunSchema, WaitQuerySchema } from '../runs/index.js'

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' })

function queryParams(schema: z.ZodObject) {
  const s = json(schema, 'input') as { properties?: Record<string, unknown>, required?: string[] }
  return Object.entries(s.properties ?? {}).map(([name, sch]) => ({ name, in: 'query', required: (s.required ?? []).includes(name), schema: sch }))
}

const errors = {
  400: { description: 'Malformed JSON, wrong types, unknown fields, forbidden keys, bad arguments', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
  401: { description: 'Missing or wrong bearer token', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
  429: { description: 'Rate limit exceeded', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
}
const ok = (schema: z.ZodType, description = 'OK') => ({ description, content: { 'application/json': { schema: json(schema) } } })
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } }
/** A plan as `GET /v1/plans/:id` answers (plans/plan-view.ts); its groups and targets carry the details. */
const PlanViewSchema = z.object({
  plan_id: z.string(), url: z.string(), status: z.string(), status_reason: z.string(), action: z.string(), summary: z.string(),
  counts: z.record(z.string(), z.number()), groups: z.array(z.object({ count: z.number(), status: z.string(), exit_code: z.number().nullable(), nodes: z.array(z.string()), output: z.string() }).passthrough()),
  targets: z.array(z.object({ node: z.string(), run_id: z.string(), status: z.string() })).optional(), excluded: z.array(z.object({ node: z.string(), reason: z.string() })),
  /** The standing grant that covered the gated targets (one use each), in place of a decision. */
  grant: z.object({ id: z.string(), uses: z.number(), uses_left: z.number().nullable(), expires_at: z.string() }).optional(),
}).passthrough()

export function openApiDocument(serverUrl?: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'writ control plane', version: '1', description: 'Declared operations on a Nomad fleet: every call names one action, one node, typed arguments and a reason.' },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths: {
      '/v1/nodes': { get: { summary: 'Nodes seen through runner heartbeats', responses: { 200: ok(z.object({ nodes: z.array(NodeSchema) })), ...errors } } },
      '/v1/actions': { get: { summary: 'Find actions (text, pack, risk, node)', parameters: queryParams(ActionListQuerySchema), responses: { 200: ok(z.object({ actions: z.array(ActionSummarySchema) })), ...errors } } },
      '/v1/actions/{id}': { get: { summary: 'An action\'s exact argument contract and the nodes that have it', parameters: [idParam], responses: { 200: ok(ActionDetailSchema), 404: errors[400], ...errors } } },
      '/v1/runs': {
        post: {
          summary: 'Request a run; waits up to `wait` seconds for it to finish',
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, description: 'A new unique key per request (1-200 of A-Z a-z 0-9 _ . : -): the same key from the same principal returns the same run for `runs.operation_ttl`, never a second dispatch; a replay carries `Idempotent-Replayed: true`', schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,200}$' } }],
          requestBody: { required: true, content: { 'application/json': { schema: json(RunRequestSchema, 'input') } } },
          responses: { 200: ok(ShownRunSchema, 'The run finished (any terminal status)'), 202: ok(ShownRunSchema, 'The run is pending approval or still running'), 403: { description: 'Denied by policy', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 404: { description: 'Unknown action or node', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 409: { description: 'The node lacks the pack or reports another digest; or the Idempotency-Key is still being started by another request (WRIT_ERR_OPERATION_IN_PROGRESS)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 422: { description: 'The Idempotency-Key was first sent with other arguments (WRIT_ERR_OPERATION_KEY_REUSED)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 413: { description: 'Body too large', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 423: { description: 'A freeze covers the requester and the action changes state (WRIT_ERR_FROZEN, with `frozen`: scope, by, reason, since)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, ...errors, 429: { description: 'Rate limit exceeded; or the requester already has `runs.max_pending_per_requester` runs waiting for approval (WRIT_ERR_TOO_MANY_PENDING, with `limit` and `pending`); or its budget is spent (WRIT_ERR_BUDGET_EXHAUSTED, with `budget`, `limit`, `spent`, `resets_at` and a Retry-After header)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 503: { description: 'The control plane holds `runs.max_active_runs` unfinished runs (WRIT_ERR_TOO_MANY_ACTIVE_RUNS), or NATS is unreachable', content: { 'application/json': { schema: json(ErrorBodySchema) } } } },
        },
        get: { summary: 'Recent runs (by session, node, status)', parameters: queryParams(RunListQuerySchema), responses: { 200: ok(z.object({ runs: z.array(z.record(z.string(), z.unknown())) })), ...errors } },
      },
      '/v1/runs/{id}': { get: { summary: 'A run, with `summary` (the action\'s summary over its arguments); long-polls with `wait`', parameters: [idParam, ...queryParams(WaitQuerySchema)], responses: { 200: ok(ShownRunSchema.extend({ summary: z.string() })), ...errors } } },
      '/v1/runs/{id}/output': { get: { summary: 'Live output chunks from `cursor`; the recorded output once done', parameters: [idParam, ...queryParams(OutputQuerySchema)], responses: { 200: ok(RunOutputSchema), ...errors } } },
      '/v1/runs/{id}/cancel': { post: { summary: 'Cancel a run (before dispatch, or ask the runner); someone else\'s run that needed approval only by its approvers or `runs.cancel_any_groups`', parameters: [idParam], responses: { 200: ok(ShownRunSchema), 403: { description: 'Not the requester, nor an approver of the run (WRIT_ERR_CANCEL_FORBIDDEN)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 409: errors[400], ...errors } } },
      '/v1/approvals': { get: { summary: 'Runs waiting for approval (operators), newest first, a page at a time: `total` counts all that match, `next_cursor` (null on the last page) is the `cursor` of the next; `mine=true` for those you may decide', parameters: queryParams(ApprovalListQuerySchema), responses: { 200: ok(z.object({ approvals: z.array(z.object({ id: z.string(), action: z.string(), node_name: z.string(), summary: z.string(), args: z.record(z.string(), z.unknown()), approval: ApprovalSummarySchema }).passthrough()), total: z.number().int(), next_cursor: z.string().nullable() })), 403: errors[400], ...errors } } },
      '/v1/runs/{id}/approve': {
        post: {
          summary: 'Approve a run waiting for approval (operators in its approver groups, never the requester); dispatches it once its quorum is met',
          parameters: [idParam],
          requestBody: { required: false, content: { 'application/json': { schema: json(ApproveBodySchema, 'input') } } },
          responses: { 200: ok(ShownRunSchema, 'The run after the decision (dispatched when the quorum is met)'), 403: { description: 'Not an approver of this run, or its requester; or the run needs a passkey-signed approval (WRIT_ERR_PASSKEY_REQUIRED) and none, or one that does not verify (WRIT_ERR_PASSKEY_REJECTED), came', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, 409: { description: 'Already decided, expired, already approved by you, or the binding digest does not match', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, ...errors },
        },
      },
      '/v1/runs/{id}/break-glass': {
        post: {
          summary: 'Run a waiting run alone, without its quorum, where its policy rule says break_glass: true (operators in its approver groups, never the requester); dispatches at once and leaves a review item',
          parameters: [idParam],
          requestBody: { required: true, content: { 'application/json': { schema: json(BreakGlassBodySchema, 'input') } } },
          responses: {
            200: ok(ShownRunSchema.extend({ review: ReviewItemSchema }), 'The dispatched run and its review item'),
            403: { description: 'The rule does not permit break-glass (WRIT_ERR_BREAK_GLASS_NOT_ALLOWED), not an approver, the requester, or a passkey is needed (WRIT_ERR_PASSKEY_REQUIRED)', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
            409: { description: 'Your last break-glass is not acknowledged yet (WRIT_ERR_BREAK_GLASS_UNREVIEWED), already decided, expired, or the binding does not match', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
            ...errors,
          },
        },
      },
      '/v1/reviews': { get: { summary: 'Break-glass review items, newest first; `open=true` for the unacknowledged', parameters: queryParams(ReviewListQuerySchema), responses: { 200: ok(z.object({ reviews: z.array(ReviewItemSchema) })), 403: errors[400], ...errors } } },
      '/v1/reviews/{id}/ack': {
        post: {
          summary: 'Acknowledge a break-glass review (another approver from the action\'s groups); frees its author\'s next break-glass',
          parameters: [idParam],
          requestBody: { required: false, content: { 'application/json': { schema: json(ReviewAckBodySchema, 'input') } } },
          responses: { 200: ok(ReviewItemSchema, 'The acknowledged review'), 403: errors[400], 404: errors[400], 409: errors[400], ...errors },
        },
      },
      '/v1/runs/{id}/deny': {
        post: {
          summary: 'Deny a run waiting for approval; the reason reaches the agent',
          parameters: [idParam],
          requestBody: { required: true, content: { 'application/json': { schema: json(DenyBodySchema, 'input') } } },
          responses: { 200: ok(ShownRunSchema, 'The denied run'), 403: errors[400], 409: errors[400], ...errors },
        },
      },
      '/v1/grants': {
        post: {
          summary: 'Give a standing grant (operators in the action\'s approver groups, never to themselves): one principal, one action, a node or `*`, exact args or `any`, `uses`, `expires_in` ≤ grants.max_lifetime. Active at once when the action\'s quorum is 1; otherwise once co-signed. Where the approver registry gates the action, it is made pending with no approval (`passkey_required`, `sign_url`): every approver, the grantor too, signs its digest with a passkey',
          requestBody: { required: true, content: { 'application/json': { schema: json(GrantRequestSchema, 'input') } } },
          responses: {
            201: ok(ShownGrantSchema, 'The grant, active or pending co-signatures'), 403: { description: 'Not an operator, not an approver of the action, a grant to oneself, or policy denies the action (WRIT_ERR_FORBIDDEN, WRIT_ERR_NOT_AN_APPROVER, WRIT_ERR_SELF_APPROVAL, WRIT_ERR_POLICY_DENIED)', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
            404: { description: 'Unknown action or node', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
            409: { description: 'Policy lets it run without approval anyway (WRIT_ERR_GRANT_NOT_NEEDED)', content: { 'application/json': { schema: json(ErrorBodySchema) } } },
            ...errors,
          },
        },
        get: { summary: 'Standing grants (operators), newest first', parameters: queryParams(GrantListQuerySchema), responses: { 200: ok(z.object({ grants: z.array(ShownGrantSchema) })), 403: errors[400], ...errors } },
      },
      '/v1/grants/{id}': {
        get: { summary: 'A standing grant (operators)', parameters: [idParam], responses: { 200: ok(ShownGrantSchema), 404: errors[400], ...errors } },
        delete: { summary: 'Revoke a grant (operators): on every replica, the next request it would have covered waits for approval', parameters: [idParam], requestBody: { required: false, content: { 'application/json': { schema: json(GrantRevokeBodySchema, 'input') } } }, responses: { 200: ok(ShownGrantSchema), 404: errors[400], 409: errors[400], ...errors } },
      },
      '/v1/grants/{id}/approve': { post: { summary: 'Co-sign a pending grant\'s digest (operators in its approver groups, distinct people), with `passkey` (a WebAuthn assertion over the digest) where the grant is `passkey_required` (WRIT_ERR_PASSKEY_REQUIRED without one, WRIT_ERR_PASSKEY_REJECTED for a bad one); active once its quorum is met', parameters: [idParam], requestBody: { required: false, content: { 'application/json': { schema: json(GrantApproveBodySchema, 'input') } } }, responses: { 200: ok(ShownGrantSchema), 403: errors[400], 409: errors[400], ...errors } } },
      '/v1/plans': {
        post: {
          summary: 'A plan: one action over targets (`{nodes}` or `{selector}` in Nomad\'s filter syntax), frozen, policy per target, one decision over the signed root, rolled out in batches; results grouped by identical output',
          requestBody: { required: true, content: { 'application/json': { schema: json(PlanRequestSchema, 'input') } } },
          responses: {
            200: ok(PlanViewSchema, 'The plan finished within `wait`'), 202: ok(PlanViewSchema, 'The plan waits for approval or is rolling out'),
            403: errors[400], 404: errors[400], 422: { description: 'No target can run it (WRIT_ERR_NO_TARGETS, with `excluded` and their reasons)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, ...errors,
          },
        },
        get: { summary: 'Recent plans', parameters: queryParams(PlanListQuerySchema), responses: { 200: ok(z.object({ plans: z.array(z.record(z.string(), z.unknown())) })), ...errors } },
      },
      '/v1/plans/{id}': { get: { summary: 'A plan: status, counts, every target with its run id, results grouped; long-polls with `wait`', parameters: [idParam, ...queryParams(PlanWaitQuerySchema)], responses: { 200: ok(PlanViewSchema), ...errors } } },
      '/v1/plans/{id}/approve': { post: { summary: 'Approve a plan (operators): one decision for all its targets', parameters: [idParam], requestBody: { content: { 'application/json': { schema: json(ApproveBodySchema, 'input') } } }, responses: { 200: ok(PlanViewSchema), 403: errors[400], 409: errors[400], ...errors } } },
      '/v1/plans/{id}/deny': { post: { summary: 'Deny a plan (operators); nothing is dispatched', parameters: [idParam], requestBody: { required: true, content: { 'application/json': { schema: json(DenyBodySchema, 'input') } } }, responses: { 200: ok(PlanViewSchema), 403: errors[400], 409: errors[400], ...errors } } },
      '/v1/plans/{id}/halt': { post: { summary: 'Halt a plan: no new target is dispatched, those in flight finish', parameters: [idParam], requestBody: { required: true, content: { 'application/json': { schema: json(HaltBodySchema, 'input') } } }, responses: { 200: ok(PlanViewSchema), 403: errors[400], 409: errors[400], ...errors } } },
      '/v1/freeze': {
        get: { summary: 'The freezes in force (anyone signed in)', responses: { 200: ok(z.object({ frozen: z.boolean(), freezes: z.array(FreezeSchema) })), ...errors } },
        post: {
          summary: 'Freeze (operators): every change-making request from the scope (`agents`, or one principal) is refused 423 on every replica, approved runs are held; reads go on',
          requestBody: { required: true, content: { 'application/json': { schema: json(FreezeRequestSchema, 'input') } } },
          responses: { 200: ok(z.object({ freeze: FreezeSchema })), 403: { description: 'Not an operator (WRIT_ERR_FORBIDDEN)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, ...errors },
        },
        delete: {
          summary: 'Unfreeze a scope (operators); held runs are dispatched', parameters: queryParams(UnfreezeQuerySchema),
          responses: { 200: ok(z.object({ unfrozen: FreezeSchema })), 403: errors[400], 409: { description: 'Nothing is frozen for that scope (WRIT_ERR_NOT_FROZEN)', content: { 'application/json': { schema: json(ErrorBodySchema) } } }, ...errors },
        },
      },
      '/v1/budgets': {
        get: {
          summary: 'Budgets and what was spent in the current windows (operators: every budgeted principal; an agent: its own)',
          responses: { 200: ok(z.object({ budgets: z.array(z.object({ principal: z.string(), limits: z.record(z.string(), z.number()), spent: z.object({ runs_this_minute: z.number(), mutations_this_hour: z.number(), nodes_this_hour: z.number() }) })) })), ...errors },
        },
      },
      '/v1/approvers/registrations': { get: { summary: 'Registered passkeys with their operators, groups and the relying party: what `writ approvers export` signs into the approver registry (operators)', responses: { 200: ok(z.object({ relying_party: z.object({ id: z.string(), origins: z.array(z.string()) }), dispatch_key_id: z.string(), registrations: z.array(z.object({ credential_id: z.string(), operator: z.string(), groups: z.array(z.string()), public_key: z.string() }).passthrough()) }).passthrough()), 403: errors[400], 503: errors[400], ...errors } } },
      '/v1/audit': {
        get: {
          summary: 'Audit events as JSON lines, one bounded page (at most audit.max_scan stored events read); Writ-Next-Seq names the next page', parameters: queryParams(AuditQuerySchema),
          responses: {
            200: {
              description: 'JSON lines, one event each',
              headers: { 'Writ-Next-Seq': { description: 'since_seq of the next page; absent when this page reached the end of the stream', schema: { type: 'integer' } } },
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...errors,
          },
        },
      },
      '/v1/stream': { get: { summary: 'WebSocket: live run output, run status and audit events', responses: { 101: { description: 'Switching protocols' }, ...errors } } },
      '/healthz': { get: { security: [], summary: 'Liveness', responses: { 200: { description: 'up' } } } },
      '/readyz': { get: { security: [], summary: 'Readiness (NATS, catalog)', responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } } },
      '/metrics': { get: { security: [], summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
    },
  }
}
