/**
 * The input of each MCP tool: parsed once at the edge (`tools/call`), and the
 * JSON Schema `tools/list` shows a model is generated from the same schema.
 * Descriptions here are read by the model: short, and saying what to put.
 */
import { z } from 'zod'
import { RiskSchema } from '@writ/packs'
import { RunStatusSchema } from '../runs/index.js'
import { RolloutSchema, TargetsSchema } from '../plans/index.js'

const RunId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected a run id as returned by run_action')
const SessionId = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'letters, digits, "_", ".", ":" and "-" only, at most 128')
const NodeRef = z.string().min(1).max(256).describe('Node name (or id) from list_nodes')
const ActionId = z.string().min(3).max(200).describe('Action id, e.g. "docker.logs"')
const OperationId = z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'letters, digits, "_", ".", ":" and "-" only, at most 200')

/** The longest a single tool call may wait, below MCP clients' usual 60 s request timeout. */
export const MAX_WAIT_SECONDS = 50

export const ListNodesInput = z.object({}).strict()

export const FindActionsInput = z.object({
  query: z.string().max(200).optional().describe('Words for what you want to see or do, e.g. "kernel log", "stop allocation"'),
  pack: z.string().max(100).optional(),
  risk: RiskSchema.optional(),
  node: NodeRef.optional().describe('Only actions you can run on this node'),
  limit: z.number().int().min(1).max(50).default(20),
}).strict()

export const GetActionInput = z.object({ action: ActionId }).strict()

export const RunActionInput = z.object({
  action: ActionId,
  node: NodeRef.optional(),
  targets: TargetsSchema.optional().describe('Instead of node: {"nodes": [names]} or {"selector": "NodePool == \\"storage\\""} (Nomad filter syntax); one plan, one grouped answer'),
  rollout: RolloutSchema.optional().describe('With targets: batch, max_concurrency, max_errors (counts or "10%"), canary, pause'),
  args: z.record(z.string(), z.unknown()).default({}).describe('Arguments as get_action lists them'),
  reason: z.string().trim().min(1).max(2000).describe('Why you run this, for the people who approve and audit it (plain text on one line)'),
  expected: z.string().trim().min(1).max(2000).optional().describe('What you expect to happen, shown to the approver (plain text on one line)'),
  evidence: z.array(RunId).max(20).refine((ids) => new Set(ids).size === ids.length, 'evidence lists a run twice').optional()
    .describe('Ids of your earlier runs that led to this one'),
  session_id: SessionId.optional().describe('One id for all runs of one investigation'),
  wait_seconds: z.number().min(0).max(MAX_WAIT_SECONDS).default(10).describe('How long to wait for the run to finish'),
  operation_id: OperationId.optional().describe('A new unique id for this request (e.g. a UUID). If the reply is lost, call again with the same operation_id and the same arguments: you get the same run back, never a second one'),
}).strict().refine((q) => (q.node === undefined) !== (q.targets === undefined), { message: 'give node (one node) or targets (a plan), exactly one', path: ['node'] })
  .refine((q) => q.rollout === undefined || q.targets !== undefined, { message: 'rollout goes with targets', path: ['rollout'] })

export const WaitForRunInput = z.object({
  run_id: RunId.describe('A run id, or a plan id (run_action with targets returns one)'),
  cursor: z.number().int().min(0).optional().describe('Character offset in stdout to read from (next_cursor of the last answer)'),
  wait_seconds: z.number().min(0).max(MAX_WAIT_SECONDS).default(25),
}).strict()

export const RecentRunsInput = z.object({
  session_id: SessionId.optional(),
  node: NodeRef.optional(),
  status: RunStatusSchema.optional(),
  action: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(100).default(20),
}).strict()

export const GetOperationInput = z.object({ operation_id: OperationId.describe('The operation_id you gave run_action') }).strict()

export const ListPacksInput = z.object({}).strict()

export type GetOperationArgs = z.infer<typeof GetOperationInput>
export type FindActionsArgs = z.infer<typeof FindActionsInput>
export type GetActionArgs = z.infer<typeof GetActionInput>
export type RunActionArgs = z.infer<typeof RunActionInput>
export type WaitForRunArgs = z.infer<typeof WaitForRunInput>
export type RecentRunsArgs = z.infer<typeof RecentRunsInput>
