// `npm run bench`: every benchmark, printed as figures and ratios against a
// baseline measured in the same process. Select with `npm run bench -- <name>`.
import { runnerRoundtrip, runnerIdleRss } from './runner-roundtrip.js'

const benches = { 'runner-roundtrip': runnerRoundtrip, 'runner-rss': runnerIdleRss }

function print({ title, header, rows }) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ')
  console.log(`\n## ${title}\n`)
  console.log(line(header))
  for (const r of rows) console.log(line(r))
}

const only = process.argv.slice(2)
for (const [name, fn] of Object.entries(benches)) {
  if (only.length > 0 && !only.includes(name)) continue
  print(await fn())
}
