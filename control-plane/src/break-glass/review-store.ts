/**
 * Break-glass review items in the `WRIT_REVIEWS` bucket, shared by every
 * replica. Each item says who ran what alone and why; other approvers
 * acknowledge it. Beside the items, one `open.<person>` key per person holds
 * the id of their unacknowledged review: it is created with `create` (fails
 * when it exists), so of two break-glass attempts by one person at the same
 * moment, on any replicas, exactly one gets the slot.
 */
import { createHash } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { z } from 'zod'
import { withJetStreamRetry } from '../nats/index.js'

export const REVIEWS_BUCKET = 'WRIT_REVIEWS'

export const ReviewItemSchema = z.object({
  id: z.string(),
  run_id: z.string(),
  action: z.string(),
  node: z.string(),
  /** The operator who broke the glass, and the person behind it. */
  by: z.string(),
  person: z.string(),
  reason: z.string(),
  at: z.string(),
  /** Who may acknowledge it: the action's approver groups (never its author). */
  approver_groups: z.array(z.string()),
  /** The policy rule that allowed it. */
  rule: z.string().nullable(),
  acknowledged_by: z.string().optional(),
  acknowledged_at: z.string().optional(),
  comment: z.string().optional(),
})
export type ReviewItem = z.infer<typeof ReviewItemSchema>

const openKey = (person: string): string => `open.${createHash('sha256').update(person).digest('hex')}`
const itemKey = (id: string): string => `item.${id}`

export class ReviewStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<ReviewStore> {
    const kv = await withJetStreamRetry(`bucket ${REVIEWS_BUCKET}`, () => new Kvm(nc).create(REVIEWS_BUCKET, { replicas, history: 1 }))
    return new ReviewStore(kv)
  }

  /** Takes `person`'s open-review slot for `reviewId`; when they already hold one, answers its review id instead. */
  async claimSlot(person: string, reviewId: string): Promise<{ ok: true } | { ok: false, openReview: string }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.kv.create(openKey(person), reviewId)
        return { ok: true }
      } catch {
        const held = await this.kv.get(openKey(person))
        // Acknowledged (deleted) between the create and the read: try again.
        if (held && held.operation === 'PUT') return { ok: false, openReview: held.string() }
      }
    }
    throw new Error(`cannot claim the break-glass slot of ${person}: the bucket ${REVIEWS_BUCKET} keeps changing`)
  }

  /** Frees `person`'s slot if it still holds `reviewId`. */
  async releaseSlot(person: string, reviewId: string): Promise<void> {
    const held = await this.kv.get(openKey(person))
    if (held && held.operation === 'PUT' && held.string() === reviewId) await this.kv.delete(openKey(person), { previousSeq: held.revision })
  }

  async put(item: ReviewItem): Promise<void> {
    await this.kv.put(itemKey(item.id), JSON.stringify(item))
  }

  /** Takes back an item whose break-glass did not happen (the run was decided meanwhile). */
  async remove(id: string): Promise<void> {
    await this.kv.purge(itemKey(id))
  }

  async get(id: string): Promise<{ item: ReviewItem, revision: number } | undefined> {
    const e = await this.kv.get(itemKey(id))
    if (!e || e.operation !== 'PUT') return undefined
    const parsed = ReviewItemSchema.safeParse(JSON.parse(e.string()))
    return parsed.success ? { item: parsed.data, revision: e.revision } : undefined
  }

  /** Writes `item` only if it is still at `revision`; false when someone else changed it first. */
  async update(item: ReviewItem, revision: number): Promise<boolean> {
    try { await this.kv.update(itemKey(item.id), JSON.stringify(item), revision) } catch { return false }
    return true
  }

  /** Every review item, newest first. */
  async list(): Promise<ReviewItem[]> {
    const out: ReviewItem[] = []
    for await (const key of await this.kv.keys('item.>')) {
      const hit = await this.get(key.slice('item.'.length))
      if (hit) out.push(hit.item)
    }
    return out.sort((a, b) => b.at.localeCompare(a.at))
  }
}
