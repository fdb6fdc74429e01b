/**
 * The fixed tool set an agent sees, written for a model: which tool when, that
 * a reason is required and read by people, that approvals are people's to
 * decide in the portal, how to cite evidence. The set does not grow with the
 * catalog (find_actions searches it), so `tools/list` stays small; it is built
 * once per process.
 */
import { z } from 'zod'
import type { Tool, ToolAnnotations } from '@modelcontextprotocol/server'
import { FindActionsInput, GetActionInput, GetOperationInput, ListNodesInput, ListPacksInput, RecentRunsInput, RunActionInput, WaitForRunInput } from './tool-schemas.js'

export const TOOL_NAMES = ['list_nodes', 'list_packs', 'find_actions', 'get_action', 'run_action', 'wait_for_run', 'get_operation', 'recent_runs'] as const
export type ToolName = typeof TOOL_NAMES[number]

/** Sent once at connection: how the tools fit together. */
export const SERVER_INSTRUCTIONS = [
  'writ runs declared operations actions on a Nomad fleet: no shell, every run names one action, one node, typed arguments and a reason, and is audited.',
  'Usual order: list_nodes, find_actions, get_action, run_action, wait_for_run.',
  'High-risk actions wait for people to approve them in the writ portal; you never approve, and approval never passes through you.',
].join(' ')

const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false }

interface ToolDefinition { name: ToolName, title: string, description: string, schema: z.ZodObject, annotations: ToolAnnotations }

const DEFINITIONS: ToolDefinition[] = [
  {
    name: 'list_nodes', title: 'List nodes', schema: ListNodesInput, annotations: READ,
    description: 'The nodes you can run actions on: name, online or offline (and when last seen), Nomad pool, datacenter and class, and the packs each has. Start here to pick a node.',
  },
  {
    name: 'list_packs', title: 'List packs', schema: ListPacksInput, annotations: READ,
    description: 'The packs of actions you can use: id, name, version, a line on what it is for, how many of its actions you may run, and how many of your nodes have it. To see what is there before searching with find_actions.',
  },
  {
    name: 'find_actions', title: 'Find actions', schema: FindActionsInput, annotations: READ,
    description: 'Search the action catalog by what you want to see or do; filter by pack, risk or node. Returns short candidates (id, title, risk, one line). Then read the one you want with get_action.',
  },
  {
    name: 'get_action', title: 'Get an action', schema: GetActionInput, annotations: READ,
    description: 'The exact contract of one action: its arguments (types, patterns, defaults), side effects, risk, an example, and the nodes that have it, with whether it runs at once there or needs a person\'s approval. Read it before run_action.',
  },
  {
    name: 'run_action', title: 'Run an action',
    schema: RunActionInput, annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    description: [
      'Run one declared action on one node, or with `targets` instead of `node` on many at once (a plan: one approval, results grouped by identical output).',
      '`reason` is required and is shown to the people who approve and audit the run: say what you are investigating or fixing and why this action.',
      'For a change, say in `expected` what should happen and cite in `evidence` the ids of your earlier runs that show it is needed. Use one `session_id` per investigation.',
      'Reads usually finish within the call and return their output (capped; parsed when the action has a parser).',
      'A gated action returns at once with status pending_approval, a portal link, the quorum and the expiry: people decide in the portal, never you; do not try to approve it. Tell the user the link, then call wait_for_run.',
      'Give each request a new `operation_id`; if the reply is lost (timeout, dropped connection), call again with the same operation_id and arguments: you get the same run back, never a second one (get_operation also tells what became of it).',
      'Failures come back as a status with a reason and what to do next.',
    ].join(' '),
  },
  {
    name: 'wait_for_run', title: 'Wait for a run', schema: WaitForRunInput, annotations: { ...READ, idempotentHint: true },
    description: 'Wait up to wait_seconds for a run (or a plan, by its plan id) to change status or finish, and read its stdout from `cursor` (next_cursor of the last answer). Use it after pending_approval or running, and to page through long output. Waiting decides nothing.',
  },
  {
    name: 'get_operation', title: 'What became of an operation', schema: GetOperationInput, annotations: READ,
    description: 'What became of a run_action you gave an operation_id, when its reply was lost: whether it started, and the run (or plan) it started with its current status. Unknown means nothing was started with it: send the run_action again.',
  },
  {
    name: 'recent_runs', title: 'Recent runs', schema: RecentRunsInput, annotations: READ,
    description: 'Your recent runs, newest first, by session_id, node, status or action: to find run ids to cite as evidence or to pick up where you left off.',
  },
]

function inputJsonSchema(schema: z.ZodObject): Tool['inputSchema'] {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>
  return rest as Tool['inputSchema']
}

/** The `tools/list` answer (computed once). */
export const TOOLS: Tool[] = DEFINITIONS.map((d) => ({ name: d.name, title: d.title, description: d.description, inputSchema: inputJsonSchema(d.schema), annotations: d.annotations }))

export const TOOL_SCHEMAS: Record<ToolName, z.ZodObject> = Object.fromEntries(DEFINITIONS.map((d) => [d.name, d.schema])) as Record<ToolName, z.ZodObject>

export function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name)
}
