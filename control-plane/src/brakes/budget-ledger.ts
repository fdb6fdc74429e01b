/**
 * Each principal's spending, one key per principal in the `WRIT_BRAKES`
 * bucket, shared by every replica. A charge is a compare-and-swap on the
 * key's revision: read, check every limit, write with the revision read; a
 * writer that lost the race reads again. So however many requests arrive at
 * once, on however many instances, no more are let through than the budget
 * holds. Within one instance, charges for one principal queue behind each
 * other, so they do not race among themselves.
 *
 * Windows are clock-aligned (the current minute, the current hour): a spent
 * budget comes back when its window ends, which is what Retry-After says.
 */
import type { KV } from '@nats-io/kv'
import { z } from 'zod'
import type { Budgets } from '../config.js'
import { retryTransient } from '../nats/index.js'
import { isRevisionConflict } from './brakes-bucket.js'

const MINUTE = 60_000
const HOUR = 3_600_000

const LedgerSchema = z.object({
  v: z.literal(1),
  minute: z.object({ start: z.number(), runs: z.number().int().min(0) }).strict(),
  hour: z.object({ start: z.number(), mutations: z.number().int().min(0), nodes: z.array(z.string()) }).strict(),
}).strict()
type Ledger = z.infer<typeof LedgerSchema>

export type BudgetName = keyof Budgets
export const BUDGET_NAMES: readonly BudgetName[] = ['mutations_per_hour', 'nodes_per_hour', 'runs_per_minute']

/** What a principal spent in the windows in force. */
export interface Spent { runs_this_minute: number, mutations_this_hour: number, nodes_this_hour: number }

/** One dispatch to charge: whether its action changes state, and the node it goes to. */
export interface Charge { mutating: boolean, node: string }

export type ChargeResult =
  | { ok: true, receipt: Receipt, spent: Spent }
  | { ok: false, budget: BudgetName, limit: number, spent: Spent, resets_at: string, retry_after_s: number }

/** What a charge added, so it can be given back exactly (a dispatch that did not happen after all). */
export interface Receipt { principal: string, minute: number, hour: number, mutating: boolean, node?: string }

function fresh(now: number): Ledger {
  return { v: 1, minute: { start: Math.floor(now / MINUTE) * MINUTE, runs: 0 }, hour: { start: Math.floor(now / HOUR) * HOUR, mutations: 0, nodes: [] } }
}

/** The ledger with windows that ended replaced by empty ones. */
function rolled(l: Ledger, now: number): Ledger {
  const f = fresh(now)
  return { v: 1, minute: l.minute.start === f.minute.start ? l.minute : f.minute, hour: l.hour.start === f.hour.start ? l.hour : f.hour }
}

/** The ledger after one more dispatch, or the budget it would break. */
function spendOne(l: Ledger, limits: Budgets, c: Charge, now: number):
  { ok: true, next: Ledger, newNode: boolean } | { ok: false, refusal: Extract<ChargeResult, { ok: false }> } {
  const spent = spentOf(l)
  const over = (budget: BudgetName, limit: number | undefined, used: number, windowEnd: number) => {
    if (limit === undefined || used < limit) return undefined
    return { ok: false as const, budget, limit, spent, resets_at: new Date(windowEnd).toISOString(), retry_after_s: Math.max(1, Math.ceil((windowEnd - now) / 1000)) }
  }
  const newNode = c.mutating && !l.hour.nodes.includes(c.node)
  const refusal = over('runs_per_minute', limits.runs_per_minute, l.minute.runs, l.minute.start + MINUTE)
    ?? (c.mutating ? over('mutations_per_hour', limits.mutations_per_hour, l.hour.mutations, l.hour.start + HOUR) : undefined)
    ?? (newNode ? over('nodes_per_hour', limits.nodes_per_hour, l.hour.nodes.length, l.hour.start + HOUR) : undefined)
  if (refusal) return { ok: false, refusal }
  const next: Ledger = {
    v: 1, minute: { ...l.minute, runs: l.minute.runs + 1 },
    hour: { ...l.hour, mutations: l.hour.mutations + (c.mutating ? 1 : 0), nodes: newNode ? [...l.hour.nodes, c.node] : l.hour.nodes },
  }
  return { ok: true, next, newNode }
}

function spentOf(l: Ledger): Spent {
  return { runs_this_minute: l.minute.runs, mutations_this_hour: l.hour.mutations, nodes_this_hour: l.hour.nodes.length }
}

/** Principal ids may hold "@", which KV keys may not: the key is the id in base64url. */
function keyOf(principal: string): string {
  return `budget.${Buffer.from(principal, 'utf8').toString('base64url')}`
}

export class BudgetLedger {
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(private readonly kv: KV, private readonly now: () => number = Date.now) {}

  /** Spends one dispatch of `principal` against `limits`, or says which budget is spent (and writes nothing). */
  charge(principal: string, limits: Budgets, c: Charge): Promise<ChargeResult> {
    return this.serialized(principal, () => this.casLoop<ChargeResult>(principal, (l, now) => {
      const step = spendOne(l, limits, c, now)
      if (!step.ok) return { write: undefined, result: step.refusal }
      const receipt: Receipt = { principal, minute: l.minute.start, hour: l.hour.start, mutating: c.mutating, ...(step.newNode ? { node: c.node } : {}) }
      return { write: step.next, result: { ok: true as const, receipt, spent: spentOf(step.next) } }
    }))
  }

  /**
   * Spends the longest prefix of `charges` that fits (a batch of a plan's
   * targets), in one compare-and-swap. Resolves with how many fit and, when
   * not all did, which budget stopped the rest.
   */
  chargeMany(principal: string, limits: Budgets, charges: readonly Charge[]): Promise<{ admitted: number, spent: Spent, refusal?: Extract<ChargeResult, { ok: false }> }> {
    return this.serialized(principal, () => this.casLoop(principal, (l, now) => {
      let ledger = l
      let admitted = 0
      let refusal: Extract<ChargeResult, { ok: false }> | undefined
      for (const c of charges) {
        const step = spendOne(ledger, limits, c, now)
        if (!step.ok) { refusal = step.refusal; break }
        ledger = step.next
        admitted++
      }
      const result = { admitted, spent: spentOf(ledger), ...(refusal ? { refusal } : {}) }
      return { write: admitted > 0 ? ledger : undefined, result }
    }))
  }

  /** Gives back what `receipt` spent, in the windows it was spent in (a window that ended has nothing to give back). */
  async refund(receipt: Receipt): Promise<void> {
    await this.serialized(receipt.principal, () => this.casLoop(receipt.principal, (l) => {
      const minute = l.minute.start === receipt.minute ? { ...l.minute, runs: Math.max(0, l.minute.runs - 1) } : l.minute
      const hour = l.hour.start !== receipt.hour ? l.hour : {
        ...l.hour, mutations: Math.max(0, l.hour.mutations - (receipt.mutating ? 1 : 0)),
        nodes: receipt.node === undefined ? l.hour.nodes : l.hour.nodes.filter((n) => n !== receipt.node),
      }
      return { write: { v: 1 as const, minute, hour }, result: undefined }
    }))
  }

  /** What `principal` spent in the windows in force. */
  async spent(principal: string): Promise<Spent> {
    const { ledger } = await this.read(principal)
    return spentOf(ledger)
  }

  private async read(principal: string): Promise<{ ledger: Ledger, revision: number }> {
    const now = this.now()
    const e = await retryTransient(() => this.kv.get(keyOf(principal)))
    if (!e || e.operation !== 'PUT') return { ledger: fresh(now), revision: e?.revision ?? 0 }
    let json: unknown
    try { json = JSON.parse(e.string()) } catch { json = undefined }
    const parsed = LedgerSchema.safeParse(json)
    // An unreadable ledger starts over rather than block the principal for good; the revision still guards the write.
    return { ledger: parsed.success ? rolled(parsed.data, now) : fresh(now), revision: e.revision }
  }

  private async casLoop<T>(principal: string, step: (l: Ledger, now: number) => { write: Ledger | undefined, result: T }): Promise<T> {
    const key = keyOf(principal)
    for (let attempt = 0; attempt < 200; attempt++) {
      const { ledger, revision } = await this.read(principal)
      const { write, result } = step(ledger, this.now())
      if (!write) return result
      try {
        const value = JSON.stringify(write)
        await retryTransient(() => (revision === 0 ? this.kv.create(key, value) : this.kv.update(key, value, revision)))
        return result
      } catch (err) {
        if (!isRevisionConflict(err)) throw err
        // Another instance charged first: back off a little, read again, check again.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * (attempt + 1))))
      }
    }
    throw new Error(`the budget ledger of ${principal} kept changing under 200 attempts to charge it`)
  }

  private serialized<T>(principal: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(principal) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => {})
    this.queues.set(principal, tail)
    void tail.then(() => { if (this.queues.get(principal) === tail) this.queues.delete(principal) })
    return run
  }
}
