/**
 * The run tools: run_action (the one tool that changes anything), wait_for_run
 * and recent_runs. run_action goes through the same request path as
 * `POST /v1/runs` (`RunService.submit`: validation, policy, audit, signed
 * dispatch); a gated run comes back at once as pending_approval and is never
 * waited on here — people decide it in the portal.
 */
import type { Principal } from '../auth/index.js'
import type { FleetView } from '../fleet/index.js'
import { OperationNotFound } from '../http/index.js'
import type { Plans } from '../plans/index.js'
import { isTerminal, newRunId, type Operations, type OutputBuffer, type Run, type RunService, type RunStore } from '../runs/index.js'
import { newPlanId } from '../plans/plan-service.js'
import type { CatalogTools } from './catalog-tools.js'
import { isPlanId, type McpPlanView, type PlanTools } from './plan-tools.js'
import { runView, type RunView } from './run-view.js'
import type { GetOperationArgs, RecentRunsArgs, RunActionArgs, WaitForRunArgs } from './tool-schemas.js'

export interface RunToolDeps {
  runs: RunService
  store: RunStore
  outputs: OutputBuffer
  fleet: FleetView
  catalogTools: CatalogTools
  runUrl: (runId: string) => string
  /** Characters of output one answer carries at most. */
  budget: number
  /** `runs.max_wait`: no call waits longer, whatever it asks. */
  maxWaitMs: number
  /** run_action with targets, wait_for_run with a plan id. */
  planTools: PlanTools
  plans: Plans
  /** Idempotency keys (`operation_id`). */
  operations: Operations
}

/** What run_action asks for, as its idempotency key's fingerprint sees it: everything but how long to wait. */
function requestOf(q: RunActionArgs): Omit<RunActionArgs, 'wait_seconds' | 'operation_id'> {
  const { wait_seconds: _w, operation_id: _o, ...request } = q
  return request
}

/** A run that will not end inside a call: it waits for a person. */
const settled = (r: Pick<Run, 'status'>): boolean => isTerminal(r.status) || r.status === 'pending_approval'

export class RunTools {
  constructor(private readonly d: RunToolDeps) {}

  private waitMs(seconds: number): number { return Math.min(seconds * 1000, this.d.maxWaitMs) }

  private view(run: Run, cursor?: number): RunView {
    const shown = this.d.runs.present(run)
    const live = isTerminal(run.status) ? undefined : this.d.outputs.since(run.id, 0)
    return runView(shown, {
      budget: this.d.budget, url: this.d.runUrl(run.id), cursor,
      lastSeen: run.status === 'node_offline' ? this.d.fleet.find(run.node_id)?.last_seen : undefined,
      live,
    })
  }

  async runAction(principal: Principal, q: RunActionArgs): Promise<RunView | McpPlanView> {
    if (q.targets !== undefined) {
      if (q.operation_id === undefined) return this.d.planTools.runPlan(principal, q)
      const { value: planId } = await this.d.operations.once(principal, q.operation_id, 'plan', requestOf(q), {
        newId: newPlanId,
        start: async (id) => (await this.d.planTools.createPlan(principal, q, id)).id,
        existing: (id) => this.d.plans.service.get(principal, id).then(({ plan }) => plan.id, () => undefined),
      })
      return this.d.planTools.view(principal, planId, q.wait_seconds)
    }
    // Scope first: outside it, the action or node reads as nonexistent (and nothing is recorded as a run).
    const { action } = this.d.catalogTools.action(principal, q.action)
    const node = this.d.catalogTools.node(principal, q.node as string)
    const request = {
      action: action.id, node: node.id, args: q.args, reason: q.reason, wait: 0,
      ...(q.session_id !== undefined ? { session_id: q.session_id } : {}),
      ...(q.expected !== undefined ? { expected: q.expected } : {}),
      ...(q.evidence !== undefined ? { evidence: q.evidence } : {}),
    }
    let run = q.operation_id === undefined
      ? await this.d.runs.submit(principal, request)
      : (await this.d.operations.once(principal, q.operation_id, 'run', requestOf(q), {
          newId: newRunId,
          start: (runId) => this.d.runs.submit(principal, request, { runId }),
          existing: async (id) => (await this.d.store.current(id))?.run,
        })).value
    if (!settled(run) && q.wait_seconds > 0) run = (await this.d.store.waitFor(run.id, settled, this.waitMs(q.wait_seconds))) ?? run
    return this.view(run)
  }

  /** What became of an operation_id: its run (or plan) as it is now, or not_found. */
  async getOperation(principal: Principal, q: GetOperationArgs) {
    const rec = await this.d.operations.get(principal, q.operation_id)
    if (!rec) throw new OperationNotFound(q.operation_id)
    const base = { operation_id: rec.operation_id, state: rec.state, created_at: rec.created_at }
    if (rec.state === 'refused') return { ...base, [`${rec.kind}_id`]: rec.target_id, refusal: { code: rec.error?.code, reason: rec.error?.message } }
    if (rec.kind === 'plan') {
      const plan = await this.d.planTools.view(principal, rec.target_id, 0).catch(() => undefined)
      return plan ? { ...base, plan } : { ...base, plan_id: rec.target_id, next: 'It is being started: call get_operation again in a few seconds.' }
    }
    const run = (await this.d.store.current(rec.target_id))?.run
    return run ? { ...base, run: this.view(run) } : { ...base, run_id: rec.target_id, next: 'It is being started: call get_operation again in a few seconds.' }
  }

  async waitForRun(principal: Principal, q: WaitForRunArgs): Promise<RunView | McpPlanView> {
    if (isPlanId(q.run_id)) return this.d.planTools.view(principal, q.run_id, q.wait_seconds)
    let run = await this.d.runs.get(principal, q.run_id)
    const unread = (): boolean => q.cursor !== undefined && this.liveStdoutLength(run.id) > q.cursor
    if (!isTerminal(run.status) && q.wait_seconds > 0 && !unread()) {
      await this.change(run, this.waitMs(q.wait_seconds))
      run = await this.d.runs.get(principal, q.run_id)
    }
    return this.view(run, q.cursor)
  }

  recentRuns(principal: Principal, q: RecentRunsArgs) {
    const node = q.node !== undefined ? this.d.catalogTools.node(principal, q.node) : undefined
    const runs = this.d.store.list({ requester: principal.id, session_id: q.session_id, node: node?.id, status: q.status, action: q.action }, q.limit)
    return {
      runs: runs.map((r) => ({
        run_id: r.id, action: r.action, node: r.node_name, status: r.status,
        reason: r.reason.length > 200 ? `${r.reason.slice(0, 199)}…` : r.reason,
        ...(r.session_id ? { session_id: r.session_id } : {}),
        created_at: r.created_at, ...(r.finished_at ? { finished_at: r.finished_at } : {}),
        ...(r.exit_code !== undefined ? { exit_code: r.exit_code } : {}),
      })),
    }
  }

  private liveStdoutLength(runId: string): number {
    return this.d.outputs.since(runId, 0).chunks.reduce((n, c) => n + (c.stream === 'stdout' ? c.data.length : 0), 0)
  }

  /** Resolves when `run` changes status, new output arrives, or `ms` pass. */
  private async change(run: Run, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      let stopRun = (): void => {}
      let stopChunks = (): void => {}
      const done = (): void => { clearTimeout(timer); stopRun(); stopChunks(); resolve() }
      const timer = setTimeout(done, ms)
      stopChunks = this.d.outputs.follow(run.id, done)
      stopRun = this.d.store.onChange((r) => { if (r.id === run.id && r.status !== run.status) done() })
      // A change that landed between reading the run and following it.
      void this.d.store.current(run.id).then((now) => { if (now && now.run.status !== run.status) done() }, done)
    })
  }
}
