/**
 * `multipathd show paths`, `show maps`, `show maps status|stats` and custom
 * `show paths format "%w|%a|…"` tables: a header row, then one row per item.
 */
import { MultipathParseError } from './multipath-topology.js'

/** A parsed multipathd table: column names as printed, and one record per row. */
export interface MultipathdTable {
  columns: string[]
  rows: Array<Record<string, string>>
}

/**
 * Splits a multipathd table by the header's column positions (multipathd pads
 * every column to its widest cell, so values with blanks — `XXX....... 7/20`,
 * `i/o pending` — stay whole). Tables printed with `|` separators are split on `|`.
 * @throws {MultipathParseError} when there is no header, or a `|` row has the wrong number of cells.
 */
export function parseMultipathdTable(stdout: string): MultipathdTable {
  const lines = stdout.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '')
  const header = lines[0]
  if (header === undefined) throw new MultipathParseError('empty output: expected a multipathd table with a header row')
  if (header.includes('|')) return splitOnBars(header, lines.slice(1))
  const starts: Array<{ name: string, at: number }> = []
  for (const m of header.matchAll(/\S+/g)) starts.push({ name: m[0], at: m.index })
  if (starts.length < 2 || !/^[a-z_-]+$/.test(starts[0]?.name ?? '')) {
    throw new MultipathParseError(`first line is not a multipathd table header: "${header.trim().slice(0, 120)}"`, 1)
  }
  const rows = lines.slice(1).map((line) => {
    const row: Record<string, string> = {}
    starts.forEach((col, c) => {
      const end = starts[c + 1]?.at ?? line.length
      row[col.name] = line.slice(col.at, end).trim()
    })
    return row
  })
  return { columns: starts.map((s) => s.name), rows }
}

function splitOnBars(header: string, body: string[]): MultipathdTable {
  const columns = header.split('|').map((c) => c.trim())
  const rows = body.map((line, r) => {
    const cells = line.split('|').map((c) => c.trim())
    if (cells.length !== columns.length) throw new MultipathParseError(`row has ${cells.length} cells, header has ${columns.length}: "${line.trim()}"`, r + 2)
    return Object.fromEntries(columns.map((c, i) => [c, cells[i] ?? '']))
  })
  return { columns, rows }
}
