/**
 * Times as a person reads them. The server knows no viewer's time zone, so a
 * page carries each instant as `<time datetime>` with readable UTC and a
 * relative form ("3 min ago"); the portal's script rewrites it into the
 * viewer's zone and keeps the relative part current. The full UTC instant is
 * always the hover title.
 */

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** `2026-03-01 14:05 UTC` (seconds and milliseconds belong in the hover title). */
export function utcText(iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** `just now`, `3 min ago`, `in 14 min`, `2 h ago`, `5 days ago`. */
export function relativeText(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now
  if (Number.isNaN(ms)) return ''
  const abs = Math.abs(ms)
  const say = (n: number, unit: string): string => (ms < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`)
  if (abs < 45_000) return 'just now'
  if (abs < 90 * 60_000) return say(Math.max(1, Math.round(abs / 60_000)), 'min')
  if (abs < 36 * 3_600_000) return say(Math.round(abs / 3_600_000), 'h')
  const days = Math.round(abs / 86_400_000)
  return say(days, days === 1 ? 'day' : 'days')
}

/** What is left of a decision window: `14 min`, `1 min 42 s`, `0 s`. */
export function timeLeft(untilIso: string, now = Date.now()): string {
  const ms = Date.parse(untilIso) - now
  if (!(ms > 0)) return '0 s'
  const s = Math.ceil(ms / 1000)
  if (s >= 600) return `${Math.floor(s / 60)} min`
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${s} s`
}

/** Under this much time left, the countdown turns to a warning. */
export const URGENT_MS = 2 * 60_000

/**
 * A `<time>` element for a page (escaped here, so templates output it raw):
 * readable UTC and the relative form; `data-when` asks the script to show
 * the viewer's zone.
 */
export function timeHtml(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '—'
  const e = escapeHtml(iso)
  return `<time datetime="${e}" title="${e}" data-when>${escapeHtml(utcText(iso))} · ${escapeHtml(relativeText(iso, now))}</time>`
}

/** The helpers every page template gets as `it.fmt`. */
export function pageFormatters(now = Date.now()) {
  return { time: (iso: string | undefined) => timeHtml(iso, now), left: (iso: string) => timeLeft(iso, now), utc: utcText }
}
