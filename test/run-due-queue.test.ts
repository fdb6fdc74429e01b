/**
 * The queue the sweeps read instead of the whole run index: it hands out only
 * what is due, earliest first, keeps it until it is removed, follows moves,
 * and does not grow with runs that came and went.
 */
import t from 'tap'
import { DueQueue } from '../control-plane/dist/runs/due-queue.js'

t.test('hands out what is due by now, earliest first, and keeps it until removed', async (t) => {
  const q = new DueQueue()
  q.set('c', 30)
  q.set('a', 10)
  q.set('b', 20)
  q.set('later', 1000)
  t.same(q.due(5), [], 'nothing is due before its time')
  t.same(q.due(25), ['a', 'b'])
  t.same(q.due(25), ['a', 'b'], 'a sweep that could not act finds them again')
  q.delete('a')
  t.same(q.due(30), ['b', 'c'], 'a removed id is not handed out')
  t.equal(q.size, 3)
})

t.test('follows a moved id, and hands an id out once even after moving it back', async (t) => {
  const q = new DueQueue()
  q.set('x', 10)
  q.set('x', 100)
  t.same(q.due(50), [], 'moved later: not due at its old time')
  q.set('x', 10)
  t.same(q.due(50), ['x'], 'moved back: due once, not twice')
  t.equal(q.size, 1)
})

t.test('ids that came and went do not pile up', async (t) => {
  const q = new DueQueue()
  for (let i = 0; i < 100_000; i++) {
    q.set(`r${i}`, 1_000_000 + i)
    if (i >= 10) q.delete(`r${i - 10}`)
  }
  t.equal(q.size, 10)
  t.ok((q as unknown as { heap: unknown[] }).heap.length <= 2 * 10 + 64, 'stale entries are dropped as they outnumber live ones')
  t.same(q.due(Number.MAX_SAFE_INTEGER), Array.from({ length: 10 }, (_, k) => `r${99_990 + k}`), 'the live ones, in order')
})
