/**
 * The rest of the deployment's tooling: the watchdog's alert rules use only
 * metrics it exports, the shipped shell scripts are POSIX sh with set -eu and
 * no eval, and terraform fmt / validate and nomad job validate run when those
 * CLIs are on PATH, with visible skips when not.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { parse as parseYaml } from 'yaml'
import { join } from 'node:path'
import { allFiles, groups, hcl, jobFiles, jobsDir, rel, root, tfDir, type Json } from './helpers/deploy-files.js'
const WATCHDOG_METRICS = new Set([
  'writ_multipath_map_stuck', 'writ_multipath_map_stuck_seconds', 'writ_multipath_kicks_total',
  'writ_multipath_kick_failures_total', 'writ_multipath_kick_hung', 'writ_multipath_maps',
  'writ_multipath_pass_errors_total', 'writ_multipath_last_success_timestamp_seconds',
  'node_textfile_mtime_seconds',
])
const PROMQL_FUNCS = new Set(['time', 'absent', 'max', 'min', 'sum', 'count', 'avg', 'increase', 'rate', 'changes', 'max_over_time', 'min_over_time'])
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'on', 'without', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'])

/** Metric names an expression selects (label matchers, ranges, grouping and functions removed). */
function metricNames(expr: string): { metrics: string[], funcs: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  e = e.replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '')
  e = e.replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const funcs = [...e.matchAll(/\b([a-z_]+)\s*\(/g)].map((m) => m[1] as string)
  e = e.replace(/\b[a-z_]+\s*\(/g, '(')
  const metrics = [...e.matchAll(/\b([A-Za-z_:][A-Za-z0-9_:]*)\b/g)].map((m) => m[1] as string)
    .filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w))
  return { metrics, funcs }
}

t.test('alerts: a valid rule file using only the watchdog metric names', async (t) => {
  const doc = parseYaml(readFileSync(join(tfDir, 'alerts/multipath.yaml'), 'utf8'))
  t.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'groups: [...]')
  const alerts = new Map<string, Json>()
  for (const g of doc.groups) {
    t.type(g.name, 'string', 'group has a name')
    t.same(Object.keys(g).sort(), ['name', 'rules'])
    for (const r of g.rules) {
      t.same(Object.keys(r).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)), [], `${r.alert}: only rule fields`)
      t.type(r.alert, 'string')
      t.type(r.expr, 'string')
      t.match(r.for, /^\d+[smh]$/, `${r.alert}: for is a duration`)
      t.match(r.labels?.severity, /^(page|warning)$/, `${r.alert}: severity label`)
      t.type(r.annotations?.summary, 'string', `${r.alert}: summary annotation`)
      const { metrics, funcs } = metricNames(r.expr)
      t.ok(metrics.length > 0, `${r.alert}: selects a metric`)
      for (const m of metrics) t.ok(WATCHDOG_METRICS.has(m), `${r.alert}: ${m} is a metric the watchdog (or node_exporter's textfile collector) exports`)
      for (const f of funcs) t.ok(PROMQL_FUNCS.has(f), `${r.alert}: ${f}() is a known PromQL function`)
      alerts.set(r.alert, r)
    }
  }
  const exprs = [...alerts.values()].map((r) => `${r.labels.severity}: ${r.expr}`).join('\n')
  t.match(exprs, /page: .*writ_multipath_map_stuck/, 'pages on a stuck map')
  t.match(exprs, /page: time\(\) - max by \(instance\) \(writ_multipath_last_success_timestamp_seconds\) > 120/, 'pages when the watchdog has not reported for 2 minutes')
  t.match(exprs, /page: absent\(writ_multipath_last_success_timestamp_seconds\)/, 'pages when no watchdog reports at all')
  t.match(exprs, /page: time\(\) - node_textfile_mtime_seconds\{file="writ_multipath.prom"\} > 120/, 'pages on a stale textfile')
  t.match(exprs, /warning: .*writ_multipath_kick_failures_total/, 'warns on failing kicks')
  const stuck = [...alerts.values()].find((r) => /map_stuck/.test(r.expr))
  t.match(stuck?.expr, /> 120/, 'stuck means more than 2 minutes')
  t.same(metricNames('sum by (instance, map) (increase(writ_multipath_kicks_total{map="a"}[5m])) > 0'), { metrics: ['writ_multipath_kicks_total'], funcs: ['sum', 'increase'] }, 'the metric-name extractor itself works')
})

t.test('shell scripts: POSIX sh syntax, set -eu, no eval', async (t) => {
  const scripts = allFiles.filter((f) => f.endsWith('.sh'))
  t.ok(scripts.length >= 4)
  for (const f of scripts) {
    const text = readFileSync(f, 'utf8')
    const res = spawnSync('sh', ['-n', f], { encoding: 'utf8' })
    t.equal(res.status, 0, `${rel(f)}: sh -n ${res.stderr}`)
    t.notMatch(text, /(^|[;&|\s])eval\s/m, `${rel(f)}: no eval`)
    if (text.startsWith('#!')) t.match(text, /^set -eu$/m, `${rel(f)}: set -eu`)
  }
  if (!onPath('shellcheck')) {
    t.skip('shellcheck not on PATH — skipped shellcheck', () => {})
  } else {
    const res = spawnSync('shellcheck', ['-x', '-s', 'sh', ...scripts], { encoding: 'utf8', cwd: root })
    t.equal(res.status, 0, `shellcheck clean${res.stdout ? `:\n${res.stdout}` : ''}`)
  }
})

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0
}

t.test('terraform fmt -check (module, example, and the job files in HCL style)', async (t) => {
  if (!onPath('terraform')) { t.skip('terraform not on PATH — skipped terraform fmt -check', () => {}); return }
  const res = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', tfDir], { encoding: 'utf8' })
  t.equal(res.status, 0, `terraform fmt -check terraform/\n${res.stdout}`)
  // fmt only accepts .tf names; the job files are the same HCL syntax.
  const tmp = mkdtempSync(join(tmpdir(), 'writ-fmt-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  for (const f of jobFiles) {
    const copy = join(tmp, `${f.slice(jobsDir.length + 1)}.tf`)
    writeFileSync(copy, readFileSync(f))
    const r = spawnSync('terraform', ['fmt', '-check', '-diff', copy], { encoding: 'utf8' })
    t.equal(r.status, 0, `${rel(f)} is fmt-clean\n${r.stdout}`)
  }
})

t.test('terraform validate', async (t) => {
  if (!onPath('terraform')) { t.skip('terraform not on PATH — skipped terraform validate', () => {}); return }
  // A copy with ../jobs beside it, so the repository gets no .terraform/ or lock file.
  const tmp = mkdtempSync(join(tmpdir(), 'writ-tfv-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  cpSync(tfDir, join(tmp, 'terraform'), { recursive: true })
  cpSync(jobsDir, join(tmp, 'jobs'), { recursive: true })
  const cwd = join(tmp, 'terraform')
  const env = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' }
  const init = spawnSync('terraform', ['init', '-backend=false', '-input=false', '-no-color'], { cwd, encoding: 'utf8', env, timeout: 120_000 })
  if (init.status !== 0) {
    const why = (init.stderr || init.stdout).split('\n').find((l) => /Error|error/.test(l))?.trim() ?? 'terraform init failed'
    t.comment(`terraform init could not install the hashicorp/nomad provider: ${why}`)
    t.skip('terraform validate skipped — the hashicorp/nomad provider cannot be installed here (no registry access); fmt and the structural checks above still ran', () => {})
    return
  }
  const v = spawnSync('terraform', ['validate', '-no-color'], { cwd, encoding: 'utf8', env })
  t.equal(v.status, 0, `terraform validate\n${v.stdout}${v.stderr}`)
})

t.test('nomad job validate', async (t) => {
  if (!onPath('nomad')) { t.skip('nomad not on PATH — skipped nomad job validate', () => {}); return }
  const required: Record<string, string> = {
    release_base_url: 'https://releases.example.internal/writ', writ_version: '0.1.0',
    control_plane_sha256: '0'.repeat(64), runner_sha256: '0'.repeat(64), packs_sha256: '0'.repeat(64),
    public_url: 'https://writ.example.internal', driver_config_yaml: 'driver: freenas-iscsi',
    mkfs_guard_script: '#!/bin/sh', blank_proof_lib: '#', host_tool_script: '#!/bin/sh', nats_ca_pem: '-----BEGIN CERTIFICATE-----',
  }
  for (const f of jobFiles) {
    const declared = (await hcl(f)).variable ?? {}
    const args = ['job', 'validate']
    for (const [k, v] of Object.entries(required)) if (k in declared) args.push('-var', `${k}=${v}`)
    const r = spawnSync('nomad', [...args, f], { encoding: 'utf8' })
    t.equal(r.status, 0, `nomad job validate ${rel(f)}\n${r.stdout}${r.stderr}`)
  }
})

