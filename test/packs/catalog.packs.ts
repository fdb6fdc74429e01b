/**
 * `npm run test:packs`: the packs' own behaviour cases through
 * `writ-node-runner packs test` — writ's stock packs (Docker and Nomad
 * actions against the doubles, given to the command as unix sockets) and
 * the shared emisar catalog packs whose services it can start here. Each
 * case line becomes one tap assertion, so tap's summary counts cases; a case
 * listed in packs/README.md "Documented differences" that fails is a skip
 * naming the difference, and one that passes fails the run until the README
 * is brought up to date.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT, STOCK_PACKS } from '../helpers/runner-harness.js'
import { startDockerDouble } from '../doubles/docker-api.js'
import { startNomadDouble } from '../doubles/nomad-api.js'

const CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const EMISAR = join(REPO_ROOT, '..', 'shared', 'emisar-packs')
/** The catalog packs whose services packs test starts from Debian's packages, or that need none. */
const CATALOG = ['redis', 'postgres', 'rabbitmq', 'debugging', 'linux-core']
/** The target: at least this share of the cases that ran passes. */
const TARGET = 0.95

/** `pack: case` → why, from the table under "## Documented differences" in packs/README.md. */
function documentedDifferences(): Map<string, string> {
  const text = readFileSync(join(REPO_ROOT, 'packs', 'README.md'), 'utf8')
  const section = text.split(/^## Documented differences$/m)[1]?.split(/^## /m)[0] ?? ''
  const rows = new Map<string, string>()
  for (const line of section.split('\n')) {
    const m = /^\| `([^`]+)` \| (.+) \|$/.exec(line.trim())
    if (m) rows.set(m[1] as string, m[2] as string)
  }
  return rows
}

function packsTest(args: string[], onLine: (line: string) => void): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'packs', 'test', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let buffered = ''
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop() ?? ''
      for (const l of parts) onLine(l)
    })
    child.once('close', (code) => { if (buffered) onLine(buffered); resolve(code) })
  })
}

t.test('the packs\' own cases', async (t) => {
  const docker = await startDockerDouble()
  const nomad = await startNomadDouble({ unixSocket: true })
  t.teardown(async () => { await docker.close(); await nomad.close() })
  const documented = documentedDifferences()
  const seen = new Set<string>()
  let passed = 0
  let failed = 0
  const code = await packsTest([
    STOCK_PACKS, ...CATALOG.map((p) => join(EMISAR, p)), '--allow-shell-packs',
    '--service', `docker=unix://${docker.socketPath}`, '--service', `nomad=${nomad.addr}`,
  ], (line) => {
    t.comment(line)
    const m = /^(ok|FAIL|skip) {2,4}([^:]+): (.+?)(?:: (.*))?$/.exec(line)
    if (!m) return
    const [, verdict, pack, name, detail] = m as unknown as [string, string, string, string, string | undefined]
    const key = `${pack}: ${name}`
    seen.add(key)
    const why = documented.get(key)
    if (verdict === 'skip') t.pass(key, { skip: detail ?? 'skipped' })
    else if (verdict === 'ok') {
      passed++
      if (why) t.fail(`${key} passes but packs/README.md lists it as a documented difference (${why}): take it out`)
      else t.pass(key)
    } else {
      failed++
      if (why) t.pass(key, { skip: `documented difference: ${why} (${detail ?? ''})` })
      else t.fail(`${key}: ${detail ?? ''}`)
    }
  })
  t.not(code, 2, 'packs test ran (exit 2 is a usage error)')
  for (const key of documented.keys()) if (!seen.has(key)) t.fail(`packs/README.md documents ${key}, which did not run: take it out or fix its name`)
  t.ok(passed / Math.max(1, passed + failed) >= TARGET, `at least ${TARGET * 100}% of the cases that ran pass: ${passed} of ${passed + failed}`)
})
