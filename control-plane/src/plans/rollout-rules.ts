/**
 * The rollout's rules, pure: shares turned into counts for a plan's size,
 * and which targets may be dispatched next given what has been dispatched
 * and what has finished. Batches run one after another in rollout order
 * (each starts once the one before has finished); within a batch at most
 * `max_concurrency` targets are in flight; with `canary` the first batch
 * runs alone and the next waits `pause` after it; once failures exceed
 * `max_errors`, nothing more is dispatched.
 */
import { parseDuration } from '@writ/packs'
import { ValidationFailed, withDetails } from '../http/index.js'
import type { PlanProgress } from './plan-progress.js'
import type { ResolvedRollout, RolloutInput } from './plan-schemas.js'

const MAX_PAUSE_MS = 60 * 60 * 1000

function count(v: number | string | undefined, size: number, min: number): number | undefined {
  if (v === undefined) return undefined
  if (typeof v === 'number') return v
  const share = Number(v.slice(0, -1))
  return Math.max(min, Math.ceil((share / 100) * size - 1e-9))
}

export function resolveRollout(input: RolloutInput | undefined, size: number): ResolvedRollout {
  const r = input ?? { canary: false }
  const pauseMs = r.pause !== undefined ? parseDuration(r.pause) ?? Number.NaN : 0
  if (!Number.isFinite(pauseMs) || pauseMs > MAX_PAUSE_MS) throw withDetails(new ValidationFailed(`rollout.pause: at most 1h, got "${r.pause}"`), { field: 'rollout.pause' })
  if (r.pause !== undefined && !r.canary) throw withDetails(new ValidationFailed('rollout.pause is the wait after the canary batch: set rollout.canary: true'), { field: 'rollout.pause' })
  const batch = Math.min(size, count(r.batch, size, 1) ?? size)
  if (r.batch !== undefined && typeof r.batch === 'number' && r.batch > size) {
    throw withDetails(new ValidationFailed(`rollout.batch: ${r.batch} is more than the plan's ${size} target(s)`), { field: 'rollout.batch' })
  }
  const maxConcurrency = Math.min(batch, count(r.max_concurrency, size, 1) ?? batch)
  const maxErrors = count(r.max_errors, size, 0) ?? null
  if (r.canary && batch >= size) throw withDetails(new ValidationFailed('rollout.canary needs more than one batch: set rollout.batch below the number of targets'), { field: 'rollout.canary' })
  return { batch, max_concurrency: maxConcurrency, max_errors: maxErrors, canary: r.canary, pause_ms: pauseMs }
}

export type NextStep =
  | { kind: 'dispatch', positions: number[] }
  /** Nothing to send now: wait for results, or until `until` (the canary pause). */
  | { kind: 'wait', until?: number }
  | { kind: 'budget_exceeded', failures: number, limit: number }
  /** Every target has an outcome. */
  | { kind: 'done' }

/** What the owner of a plan of `size` targets may do next. */
export function nextStep(r: ResolvedRollout, size: number, progress: PlanProgress, now: number): NextStep {
  if (progress.results.size >= size) return { kind: 'done' }
  if (r.max_errors !== null && progress.failures > r.max_errors) return { kind: 'budget_exceeded', failures: progress.failures, limit: r.max_errors }
  let first = 0
  while (first < size && progress.dispatched.has(first)) first++
  if (first >= size) return { kind: 'wait' }
  const batch = Math.floor(first / r.batch)
  // Every earlier batch must have finished.
  for (let p = 0; p < batch * r.batch; p++) if (!progress.results.has(p)) return { kind: 'wait' }
  if (r.canary && batch >= 1 && r.pause_ms > 0) {
    let lastCanary = 0
    for (let p = 0; p < r.batch; p++) lastCanary = Math.max(lastCanary, Date.parse(progress.results.get(p)?.at ?? '') || 0)
    if (now < lastCanary + r.pause_ms) return { kind: 'wait', until: lastCanary + r.pause_ms }
  }
  const end = Math.min(size, (batch + 1) * r.batch)
  let inFlight = 0
  for (let p = batch * r.batch; p < end; p++) if (progress.dispatched.has(p) && !progress.results.has(p)) inFlight++
  const room = r.max_concurrency - inFlight
  if (room <= 0) return { kind: 'wait' }
  const positions: number[] = []
  for (let p = first; p < end && positions.length < room; p++) if (!progress.dispatched.has(p)) positions.push(p)
  return positions.length > 0 ? { kind: 'dispatch', positions } : { kind: 'wait' }
}
