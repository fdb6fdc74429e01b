/**
 * Run output sized for a model's context: text and parsed values are cut to a
 * character budget keeping the head and the tail, and every cut is stated in
 * words (what was left out, and how to read it), never silent.
 */

/** Text within `budget` characters: the head and the tail, with a marker line where the middle was. */
export function fitText(text: string, budget: number): { text: string, cut?: { omitted: number, headEnd: number, tailStart: number } } {
  if (text.length <= budget) return { text }
  const marker = (n: number): string => `\n… [${n} characters cut] …\n`
  const room = Math.max(0, budget - marker(text.length).length)
  // Lines are the unit a reader thinks in: cut at line ends when one is near.
  let headEnd = Math.ceil(room / 2)
  let tailStart = text.length - (room - headEnd)
  const nl = text.lastIndexOf('\n', headEnd)
  if (nl > headEnd * 0.8) headEnd = nl + 1
  const nl2 = text.indexOf('\n', tailStart)
  if (nl2 >= 0 && nl2 < tailStart + (text.length - tailStart) * 0.2) tailStart = nl2 + 1
  const omitted = tailStart - headEnd
  return { text: `${text.slice(0, headEnd)}${marker(omitted)}${text.slice(tailStart)}`, cut: { omitted, headEnd, tailStart } }
}

const size = (v: unknown): number => JSON.stringify(v)?.length ?? 0

/**
 * A JSON value within `budget` characters of JSON: long arrays keep their
 * first and last items around a marker item, long strings their head and
 * tail; the largest parts are cut first. `cuts` says what went, by path.
 */
export function fitJson(value: unknown, budget: number): { value: unknown, cuts: string[] } {
  const cuts: string[] = []
  return { value: fit(value, budget, '$', cuts), cuts }
}

function fit(v: unknown, budget: number, path: string, cuts: string[]): unknown {
  if (size(v) <= budget) return v
  if (typeof v === 'string') {
    const f = fitText(v, Math.max(64, budget - 2))
    if (f.cut) cuts.push(`${path}: ${f.cut.omitted} of ${v.length} characters cut from the middle`)
    return f.text
  }
  if (Array.isArray(v)) return fitArray(v, budget, path, cuts)
  if (v !== null && typeof v === 'object') return fitObject(v as Record<string, unknown>, budget, path, cuts)
  return v
}

function fitArray(items: unknown[], budget: number, path: string, cuts: string[]): unknown[] {
  const withMarker = (keep: number): unknown[] => {
    const head = Math.ceil(keep / 2)
    const tail = keep - head
    return [...items.slice(0, head), `… ${items.length - keep} of ${items.length} items cut …`, ...items.slice(items.length - tail)]
  }
  // The most items (split head/tail) that fit, found by bisection.
  let lo = 0
  let hi = items.length - 1
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (size(withMarker(mid)) <= budget) lo = mid
    else hi = mid - 1
  }
  if (lo === 0 && items.length > 0) {
    // Not even one whole item fits: keep the first, itself cut down.
    const first = fit(items[0], Math.max(64, budget - 80), `${path}[0]`, cuts)
    cuts.push(`${path}: ${items.length - 1} of ${items.length} items cut (only the first is shown)`)
    return [first, `… ${items.length - 1} of ${items.length} items cut …`]
  }
  cuts.push(`${path}: ${items.length - lo} of ${items.length} items cut from the middle (first ${Math.ceil(lo / 2)} and last ${lo - Math.ceil(lo / 2)} kept)`)
  return withMarker(lo)
}

function fitObject(obj: Record<string, unknown>, budget: number, path: string, cuts: string[]): Record<string, unknown> {
  const out = { ...obj }
  // Cut the biggest member first, then the next, until the whole fits.
  const keys = Object.keys(out).sort((a, b) => size(out[b]) - size(out[a]))
  for (const k of keys) {
    const over = size(out) - budget
    if (over <= 0) break
    const own = size(out[k])
    out[k] = fit(out[k], Math.max(64, own - over), `${path}.${k}`, cuts)
  }
  return out
}
