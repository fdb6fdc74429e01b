// `npm run bench`: every benchmark, printed as figures and ratios against a
// baseline measured in the same process. Select with `npm run bench -- <name>`.
import { runnerRoundtrip } from './runner-roundtrip.js'
import { runnerRssByKind } from './runner-rss.js'
import { runnerPasskeys } from './runner-passkeys.js'
import { runnerJournalStart } from './runner-journal-start.js'
import { httpLatency, throughput, rssWith200Nodes } from './control-plane.js'
import { approvalLatency } from './approval-latency.js'
import { mcpOverhead } from './mcp-overhead.js'
import { runStoreSweep } from './run-store-sweep.js'
import { auditScan } from './audit-scan.js'
import { fanout } from './fanout.js'
import { execFileSync } from 'node:child_process'

const benches = {
  'runner-roundtrip': runnerRoundtrip, 'runner-rss': runnerRssByKind, 'runner-passkeys': runnerPasskeys, 'runner-journal-start': runnerJournalStart,
  'api-latency': httpLatency, 'mcp-overhead': mcpOverhead, 'approval-latency': approvalLatency, 'api-throughput': throughput, 'control-plane-rss': rssWith200Nodes,
  'run-store-sweep': runStoreSweep,
  'audit-scan': auditScan,
  fanout,
  // A script of its own (it parses its own flags); its table is printed as is.
  'watchdog-pass': async () => ({ raw: execFileSync(process.execPath, [new URL('./watchdog-pass.js', import.meta.url).pathname], { encoding: 'utf8' }) }),
}

function print({ title, header, rows, raw }) {
  if (raw !== undefined) { console.log(`\n${raw}`); return }
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
