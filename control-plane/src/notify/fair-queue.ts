/**
 * Notices waiting for Slack, one queue per requester, served in turns: a
 * requester's burst waits behind its own earlier notices, never in front of
 * another requester's. When more than `coalesceAfter` notices of one
 * requester wait, its turn takes all of them at once (they go out as one
 * summary), so a flood costs Slack one message, not one per run.
 *
 * Items carry their outbox sequence and each requester's queue stays in that
 * order, also for items that come back after a retry delay: a requester is
 * held (`block`) until the items it handed back have returned, so its notices
 * about one run never overtake each other.
 */
export interface Turn<T> { requester: string, items: T[] }

export class FairQueue<T extends { seq: number }> {
  private readonly queues = new Map<string, T[]>()
  /** Requesters with notices waiting, in turn order. */
  private readonly turns: string[] = []
  private readonly blocks = new Map<string, { waiting: Set<number>, until: number }>()
  private count = 0

  constructor(private readonly coalesceAfter: number) {}

  get size(): number { return this.count }

  /** Adds an item in sequence order; an item already held under the same sequence is replaced (a redelivery). */
  add(requester: string, item: T): void {
    const block = this.blocks.get(requester)
    if (block?.waiting.delete(item.seq) && block.waiting.size === 0) this.blocks.delete(requester)
    let queue = this.queues.get(requester)
    if (!queue) { queue = []; this.queues.set(requester, queue); this.turns.push(requester) }
    let i = queue.length
    while (i > 0 && (queue[i - 1] as T).seq > item.seq) i--
    if (i > 0 && (queue[i - 1] as T).seq === item.seq) { queue[i - 1] = item; return }
    queue.splice(i, 0, item)
    this.count++
  }

  /** Holds `requester`'s turns until the items `seqs` are added again, or until `until` (another instance may have taken them). */
  block(requester: string, seqs: readonly number[], until: number): void {
    if (seqs.length > 0) this.blocks.set(requester, { waiting: new Set(seqs), until })
  }

  /** Puts a turn's items back, in order, and holds the requester until `until` (they must wait for something else first). */
  putBack(turn: Turn<T>, until: number): void {
    for (const item of turn.items) this.add(turn.requester, item)
    const block = this.blocks.get(turn.requester)
    this.blocks.set(turn.requester, { waiting: block?.waiting ?? new Set(), until: Math.max(until, block?.until ?? 0) })
  }

  /** The next requester's turn that is not held: its oldest notice, or all of its notices when more than `coalesceAfter` wait. */
  next(now: number): Turn<T> | undefined {
    for (let i = 0; i < this.turns.length; i++) {
      const requester = this.turns[i] as string
      if (this.held(requester, now)) continue
      this.turns.splice(i, 1)
      const queue = this.queues.get(requester) as T[]
      const items = queue.length > this.coalesceAfter ? queue.splice(0) : queue.splice(0, 1)
      if (queue.length > 0) this.turns.push(requester)
      else this.queues.delete(requester)
      this.count -= items.length
      return { requester, items }
    }
    return undefined
  }

  /** When the earliest hold on a requester with notices waiting lapses; undefined when none is held. */
  nextRelease(): number | undefined {
    let at: number | undefined
    for (const requester of this.turns) {
      const block = this.blocks.get(requester)
      if (block && (at === undefined || block.until < at)) at = block.until
    }
    return at
  }

  /** Every waiting item. */
  items(): T[] {
    return [...this.queues.values()].flat()
  }

  /** Removes and returns every waiting item. */
  drain(): T[] {
    const all = this.items()
    this.queues.clear()
    this.turns.length = 0
    this.blocks.clear()
    this.count = 0
    return all
  }

  private held(requester: string, now: number): boolean {
    const block = this.blocks.get(requester)
    if (!block) return false
    if (block.until > now) return true
    this.blocks.delete(requester)
    return false
  }
}
