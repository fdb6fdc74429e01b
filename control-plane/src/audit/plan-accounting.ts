/**
 * What `writ audit verify` proves about plans, whose events cover a batch of
 * targets each: every target of a closed plan (finished, denied, expired) is
 * accounted for — its request (`plan.requested`, which names the target
 * count), and either a dispatch and an outcome (`plan.dispatched`,
 * `plan.results`) or its listing as never dispatched — and no outcome comes
 * without a dispatch. Runner journals witness a plan target's request by the
 * plan's `plan.requested` hash and the target's run id (`<plan id>-<position>`).
 */
import type { AuditEvent } from './audit-event.js'

interface PlanRecord { count: number, seq: number, at: string, dispatched: Set<number>, results: Set<number>, notDispatched: Set<number> | undefined, closedAs?: string }

const PLAN_RUN = /^(p[0-9a-z]{9}[0-9a-f]{8})-(0|[1-9][0-9]{0,5})$/

/** "0-2,5" → [0, 1, 2, 5]; anything else is empty. */
function expand(text: unknown): number[] {
  if (typeof text !== 'string' || text === '') return []
  const out: number[] = []
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!m) continue
    const a = Number(m[1])
    const b = m[2] === undefined ? a : Number(m[2])
    for (let p = a; p <= b && out.length < 200_000; p++) out.push(p)
  }
  return out
}

export class PlanAccounting {
  private readonly plans = new Map<string, PlanRecord>()
  private readonly problems: string[] = []

  /** The plan target a run id names, when `event` is that plan's request (a witness on the chain). */
  static witnesses(event: AuditEvent, runId: string): boolean {
    if (event.type !== 'plan.requested') return false
    const m = PLAN_RUN.exec(runId)
    return m !== null && m[1] === event.data.plan_id && Number(m[2]) < Number(event.data.count)
  }

  observe(e: AuditEvent): void {
    if (!e.type.startsWith('plan.')) return
    const id = typeof e.data.plan_id === 'string' ? e.data.plan_id : undefined
    if (!id) return
    if (e.type === 'plan.requested') {
      this.plans.set(id, { count: Number(e.data.count) || 0, seq: e.seq, at: e.at, dispatched: new Set(), results: new Set(), notDispatched: undefined })
      return
    }
    const plan = this.plans.get(id)
    // A plan requested before the oldest surviving event: nothing to account against.
    if (!plan) return
    switch (e.type) {
      case 'plan.dispatched': for (const p of expand(e.data.positions)) plan.dispatched.add(p); break
      case 'plan.results':
        for (const r of Array.isArray(e.data.results) ? e.data.results as Array<{ p?: unknown }> : []) if (typeof r.p === 'number') plan.results.add(r.p)
        break
      case 'plan.finished': plan.notDispatched = new Set(expand(e.data.not_dispatched)); plan.closedAs = String(e.data.status); break
      case 'plan.denied': case 'plan.expired':
        plan.notDispatched = new Set(Array.from({ length: plan.count }, (_, p) => p)); plan.closedAs = e.type.slice(5); break
    }
  }

  /** Problems found, and a note on plans still open. */
  report(): { problems: string[], notes: string[], plans: number, targets: number } {
    const notes: string[] = []
    let targets = 0
    let open = 0
    for (const [id, plan] of this.plans) {
      targets += plan.count
      for (const p of plan.results) if (!plan.dispatched.has(p)) this.problems.push(`plan ${id}: target ${p} has an outcome on the chain but no dispatch`)
      if (plan.closedAs === undefined) { open++; continue }
      const missing: number[] = []
      for (let p = 0; p < plan.count; p++) {
        const ran = plan.dispatched.has(p) && plan.results.has(p)
        if (!ran && !plan.notDispatched?.has(p)) missing.push(p)
      }
      if (missing.length > 0) this.problems.push(`plan ${id} (${plan.closedAs}): ${missing.length} target(s) have neither a dispatch and an outcome nor a listing as never dispatched (first: ${missing.slice(0, 10).join(', ')})`)
    }
    if (this.plans.size > 0) notes.push(`${this.plans.size} plan(s) with ${targets} target(s) accounted for${open > 0 ? `; ${open} still open (waiting or rolling out)` : ''}`)
    return { problems: this.problems.slice(0, 50), notes, plans: this.plans.size, targets }
  }
}
