const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses "500ms", "15s", "2m", "1h" (or a sum like "1m30s") into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim()
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h))+$/.test(s)) return undefined
  let total = 0
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  return Math.round(total)
}
