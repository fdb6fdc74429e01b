/**
 * Notices waiting for Slack, one queue per requester, served in turns: a
 * requester's burst waits behind its own earlier notices, never in front of
 * another requester's. When more than `coalesceAfter` notices of one
 * requester wait, its turn takes all of them at once (they go out as one
 * summary), so a flood costs Slack one message, not one per run.
 */
export interface Turn<T> { requester: string, items: T[] }

export class FairQueue<T> {
  private readonly queues = new Map<string, T[]>()
  /** Requesters with notices waiting, in turn order. */
  private readonly turns: string[] = []
  private count = 0

  constructor(private readonly coalesceAfter: number) {}

  get size(): number { return this.count }

  add(requester: string, item: T): void {
    const queue = this.queues.get(requester)
    if (queue) queue.push(item)
    else { this.queues.set(requester, [item]); this.turns.push(requester) }
    this.count++
  }

  /** The next requester's turn: its oldest notice, or all of its notices when more than `coalesceAfter` wait. */
  next(): Turn<T> | undefined {
    const requester = this.turns.shift()
    if (requester === undefined) return undefined
    const queue = this.queues.get(requester) as T[]
    const items = queue.length > this.coalesceAfter ? queue.splice(0) : queue.splice(0, 1)
    if (queue.length > 0) this.turns.push(requester)
    else this.queues.delete(requester)
    this.count -= items.length
    return { requester, items }
  }

  /** A turn that must be tried again: its notices go back to the front of their requester's queue, whose turn comes after the others'. */
  putBack(turn: Turn<T>): void {
    const queue = this.queues.get(turn.requester)
    if (queue) queue.unshift(...turn.items)
    else { this.queues.set(turn.requester, [...turn.items]); this.turns.push(turn.requester) }
    this.count += turn.items.length
  }

  /** Removes the newest notice of the requester with the most waiting (to make room for another's). */
  evictFromLargest(): { requester: string, item: T } | undefined {
    const largest = this.largest()
    if (!largest) return undefined
    const queue = this.queues.get(largest.requester) as T[]
    const item = queue.pop() as T
    this.count--
    if (queue.length === 0) { this.queues.delete(largest.requester); this.turns.splice(this.turns.indexOf(largest.requester), 1) }
    return { requester: largest.requester, item }
  }

  /** The requester with the most notices waiting, and how many. */
  largest(): { requester: string, waiting: number } | undefined {
    let best: { requester: string, waiting: number } | undefined
    for (const [requester, queue] of this.queues) if (!best || queue.length > best.waiting) best = { requester, waiting: queue.length }
    return best
  }

  /** Removes and returns every waiting notice. */
  drain(): T[] {
    const all = [...this.queues.values()].flat()
    this.queues.clear()
    this.turns.length = 0
    this.count = 0
    return all
  }
}
