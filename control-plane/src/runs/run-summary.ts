/**
 * A run in words, for every surface a person reads (the portal, Slack, the
 * CLI): the action's summary over the run's arguments, and the side effects
 * that apply to them. Sensitive arguments are redacted before any of it is
 * rendered.
 */
import { applicableSideEffects, renderSummary, type PackCatalog } from '@writ/packs'
import type { Run } from './run-record.js'
import { redactArgs, sensitiveArgNames } from './sensitive-args.js'

/**
 * Names for argument values that are ids: the run's own node id is its node's
 * name (a runner acts only on its own node), and `extra` adds what the control
 * plane read elsewhere (an allocation's name from the impact preview).
 */
export function argumentLabels(run: Pick<Run, 'args' | 'node_id' | 'node_name'>, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const [k, v] of Object.entries(run.args)) if (v === run.node_id && run.node_name !== run.node_id) labels[k] = run.node_name
  return { ...labels, ...extra }
}

/** The run in one line: `Stop allocation a8198d79 (victoria-metrics.storage[0]) on nomad-client-3`. */
export function runSummary(run: Pick<Run, 'action' | 'args' | 'node_id' | 'node_name'>, catalog: PackCatalog, extraLabels: Readonly<Record<string, string>> = {}): string {
  const args = redactArgs(run.args, sensitiveArgNames(catalog, run.action))
  const hit = catalog.lookup(run.action)
  const spec = hit.ok ? hit.action.spec : { id: run.action, title: run.action }
  return renderSummary(spec, { node: run.node_name, args, labels: argumentLabels(run, extraLabels) })
}

/** The declared side effects that apply to this run's arguments. */
export function runSideEffects(run: Pick<Run, 'action' | 'args'>, catalog: PackCatalog): string[] {
  const hit = catalog.lookup(run.action)
  return hit.ok ? applicableSideEffects(hit.action.spec.side_effects, redactArgs(run.args, sensitiveArgNames(catalog, run.action))) : []
}
