/**
 * Ids ordered by the moment something must happen to them (an approval window
 * closing, a deadline passing), so a periodic sweep touches only what is due
 * instead of every run the store holds: a binary min-heap with lazy deletion.
 * A removed or re-timed id leaves a stale heap entry that is dropped when it
 * surfaces; the heap is rebuilt when stale entries outnumber live ones, so it
 * never holds more than about twice the live ids.
 */
interface Entry { id: string, at: number }

export class DueQueue {
  /** Live ids and their due time (ms since the epoch). */
  private readonly at = new Map<string, number>()
  private heap: Entry[] = []

  get size(): number { return this.at.size }

  has(id: string): boolean { return this.at.has(id) }

  /** The live ids, in no particular order. */
  ids(): IterableIterator<string> { return this.at.keys() }

  /** Puts `id` in the queue, due at `at`; moves it if it was due at another time. */
  set(id: string, at: number): void {
    if (this.at.get(id) === at) return
    this.at.set(id, at)
    this.push({ id, at })
    if (this.heap.length > 64 && this.heap.length > 2 * this.at.size) this.rebuild()
  }

  delete(id: string): void {
    this.at.delete(id)
  }

  /**
   * Ids due at or before `now`, earliest first. They stay in the queue until
   * deleted: a sweep that could not act on one finds it again next time.
   */
  due(now: number): string[] {
    const out: Entry[] = []
    const seen = new Set<string>()
    while (this.heap.length > 0 && (this.heap[0] as Entry).at <= now) {
      const top = this.pop()
      // An id moved away and back leaves two entries at its time: one is enough.
      if (this.at.get(top.id) === top.at && !seen.has(top.id)) { seen.add(top.id); out.push(top) }
    }
    for (const e of out) this.push(e)
    return out.map((e) => e.id)
  }

  private rebuild(): void {
    this.heap = [...this.at].map(([id, at]) => ({ id, at }))
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i)
  }

  private push(e: Entry): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((h[parent] as Entry).at <= e.at) break
      h[i] = h[parent] as Entry
      i = parent
    }
    h[i] = e
  }

  private pop(): Entry {
    const h = this.heap
    const top = h[0] as Entry
    const last = h.pop() as Entry
    if (h.length > 0) { h[0] = last; this.down(0) }
    return top
  }

  private down(i: number): void {
    const h = this.heap
    const e = h[i] as Entry
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const c = r < h.length && (h[r] as Entry).at < (h[l] as Entry).at ? r : l
      if ((h[c] as Entry).at >= e.at) break
      h[i] = h[c] as Entry
      i = c
    }
    h[i] = e
  }
}
