/**
 * NATS subjects. Everything a runner sends or receives sits under its own
 * `writ.v1.node.<nodeId>.` prefix, so NATS authorization can confine each
 * runner to its node with one permission pair.
 */
export const SUBJECT_ROOT = 'writ.v1'
/** Node ids are subject tokens: no dots, spaces or wildcards. */
export const NODE_ID_RE = /^[A-Za-z0-9_-]{1,128}$/
/** Run ids are subject tokens too (the control plane makes them). */
export const RUN_ID_RE = /^[A-Za-z0-9_-]{8,64}$/

function node(nodeId: string): string {
  if (!NODE_ID_RE.test(nodeId)) throw new TypeError(`node id "${nodeId}" is not a valid subject token (letters, digits, "-" and "_")`)
  return `${SUBJECT_ROOT}.node.${nodeId}`
}
function run(runId: string): string {
  if (!RUN_ID_RE.test(runId)) throw new TypeError(`run id "${runId}" is not a valid subject token`)
  return runId
}

export const subjects = {
  /** Control plane → runner: a signed writ (request/reply; the reply is the runner's acceptance or refusal). */
  run: (nodeId: string) => `${node(nodeId)}.run`,
  /** Control plane → runner: a signed cancel for one run. */
  cancel: (nodeId: string) => `${node(nodeId)}.cancel`,
  /** Runner → all: heartbeat carrying the inventory. */
  heartbeat: (nodeId: string) => `${node(nodeId)}.heartbeat`,
  /** Runner → control plane: live output chunks (core NATS, best effort). */
  output: (nodeId: string, runId: string) => `${node(nodeId)}.output.${run(runId)}`,
  /** Runner → JetStream: the final result of a run (durable). */
  result: (nodeId: string, runId: string) => `${node(nodeId)}.result.${run(runId)}`,
  /** Runner → JetStream: automated interventions and node events (watchdog kicks…). */
  event: (nodeId: string, kind: string) => `${node(nodeId)}.event.${kind}`,

  allHeartbeats: `${SUBJECT_ROOT}.node.*.heartbeat`,
  allResults: `${SUBJECT_ROOT}.node.*.result.*`,
  allEvents: `${SUBJECT_ROOT}.node.*.event.*`,
  allOutput: `${SUBJECT_ROOT}.node.*.output.*`,
} as const

/** JetStream streams the runners publish into. */
export const streams = {
  results: { name: 'WRIT_RESULTS', subjects: [subjects.allResults] },
  events: { name: 'WRIT_EVENTS', subjects: [subjects.allEvents] },
} as const
