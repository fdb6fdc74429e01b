/**
 * The alert rule files as the Terraform module deploys them: rendered with
 * the module's own defaults (read from terraform/*.tf, never copied here),
 * checked and unit-tested with promtool, and picked apart into the metric
 * names their expressions read.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parse as parseHcl } from '@cdktf/hcl2json'
import { parse as parseYaml } from 'yaml'
import type { Test } from 'tap'
import { REPO_ROOT } from './runner-harness.js'

export const TF_DIR = join(REPO_ROOT, 'terraform')
export const ALERTS_DIR = join(TF_DIR, 'alerts')
export const RULE_TESTS_DIR = join(REPO_ROOT, 'test', 'alerts')
/** alert_runbook_url has no default (it is where your people read the docs); the rule tests expect this one. */
export const TEST_RUNBOOK_URL = 'https://git.example.internal/platform/writ/-/blob/v0.1.0/docs/operations.md'

export interface Rule { alert: string, expr: string, for: string, labels: Record<string, string>, annotations: Record<string, string> }
export interface RuleFile { groups: Array<{ name: string, rules: Rule[] }> }

type Json = any // hcl2json output is untyped JSON by nature

/** Every variable and local the module's .tf files declare. */
async function moduleBlocks(): Promise<{ variables: Record<string, Json>, locals: Record<string, Json> }> {
  const variables: Record<string, Json> = {}
  const locals: Record<string, Json> = {}
  for (const f of readdirSync(TF_DIR).filter((n) => n.endsWith('.tf'))) {
    const doc = await parseHcl(f, readFileSync(join(TF_DIR, f), 'utf8'))
    for (const [name, v] of Object.entries(doc.variable ?? {})) variables[name] = (v as Json[])[0]
    for (const block of (doc.locals ?? []) as Json[]) Object.assign(locals, block)
  }
  return { variables, locals }
}

/** The module's variable blocks (name → body), for the structural checks. */
export async function moduleVariables(): Promise<Record<string, Json>> {
  return (await moduleBlocks()).variables
}

/**
 * The values `templatefile()` gets for a template when every variable keeps
 * its default: the module's local `localName`, each entry `${var.x}` or
 * `${join("|", var.x)}`, resolved against the variables' defaults.
 */
export async function moduleTemplateValues(localName: string, overrides: Record<string, unknown> = { alert_runbook_url: TEST_RUNBOOK_URL }): Promise<Record<string, string>> {
  const { variables, locals } = await moduleBlocks()
  const map = locals[localName] as Record<string, string> | undefined
  if (!map || typeof map !== 'object') throw new Error(`terraform/*.tf declares no local map ${localName}`)
  const valueOf = (name: string): unknown => {
    if (name in overrides) return overrides[name]
    const v = variables[name]
    if (!v) throw new Error(`local.${localName} reads var.${name}, which no terraform/*.tf declares`)
    if (!('default' in v)) throw new Error(`var.${name} has no default; give the test a value for it`)
    return v.default
  }
  const out: Record<string, string> = {}
  for (const [key, expr] of Object.entries(map)) {
    let m: RegExpExecArray | null
    if ((m = /^\$\{var\.([a-z0-9_]+)\}$/.exec(expr))) out[key] = String(valueOf(m[1] as string))
    else if ((m = /^\$\{join\("([^"]*)", var\.([a-z0-9_]+)\)\}$/.exec(expr))) out[key] = (valueOf(m[2] as string) as unknown[]).join(m[1] as string)
    else throw new Error(`local.${localName}.${key} = ${expr}: only var.x and join("sep", var.x) are understood here`)
  }
  return out
}

/**
 * Terraform's template language, the part rule files may use: `${name}`
 * interpolations and the `$${` / `%%{` escapes. Anything else (`%{` directives,
 * expressions) is refused, so a template this cannot render also fails here.
 */
export function renderTemplate(text: string, values: Record<string, string>): string {
  const used = new Set<string>()
  const out = text.replace(/\$\$\{|%%\{|\$\{([^}]*)\}|%\{/g, (tok, name: string | undefined) => {
    if (tok === '$${') return '${'
    if (tok === '%%{') return '%{'
    if (tok === '%{') throw new Error('template directives (%{...}) are not used in rule files')
    const n = (name ?? '').trim()
    if (!/^[a-z_][a-z0-9_]*$/.test(n)) throw new Error(`\${${n}}: only plain variable names are used in rule files`)
    if (!(n in values)) throw new Error(`\${${n}} is not among the values the module passes (${Object.keys(values).join(', ')})`)
    used.add(n)
    return values[n] as string
  })
  const unused = Object.keys(values).filter((k) => !used.has(k))
  if (unused.length > 0) throw new Error(`the module passes ${unused.join(', ')}, which the template never uses`)
  return out
}

/** The same rendering by Terraform itself (`templatefile()` in a provider-less root module), when terraform is on PATH. */
export function renderWithTerraform(file: string, values: Record<string, string>): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v terraform'], { stdio: 'ignore' }).status !== 0) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'writ-tftpl-'))
  try {
    writeFileSync(join(dir, 'main.tf'), `output "rendered" {\n  value = templatefile(${JSON.stringify(file)}, ${JSON.stringify(values)})\n}\n`)
    const env = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_CLI_CONFIG_FILE: '/dev/null' }
    for (const args of [['init', '-input=false', '-no-color'], ['apply', '-auto-approve', '-input=false', '-no-color']]) {
      const r = spawnSync('terraform', args, { cwd: dir, encoding: 'utf8', env, timeout: 120_000 })
      if (r.status !== 0) throw new Error(`terraform ${args[0]}: ${r.stdout}${r.stderr}`)
    }
    const out = spawnSync('terraform', ['output', '-raw', 'rendered'], { cwd: dir, encoding: 'utf8', env })
    if (out.status !== 0) throw new Error(`terraform output: ${out.stderr}`)
    return out.stdout
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

/** writ.yaml and multipath.yaml rendered as the module deploys them with its defaults, written into `dir`. */
export async function renderModuleRules(dir: string): Promise<{ writ: string, multipath: string }> {
  const writ = join(dir, 'writ.yaml')
  const multipath = join(dir, 'multipath.yaml')
  writeFileSync(writ, renderTemplate(readFileSync(join(ALERTS_DIR, 'writ.yaml'), 'utf8'), await moduleTemplateValues('alert_thresholds')))
  writeFileSync(multipath, renderTemplate(readFileSync(join(ALERTS_DIR, 'multipath.yaml'), 'utf8'), { runbook_url: TEST_RUNBOOK_URL }))
  return { writ, multipath }
}

export function readRules(file: string): Rule[] {
  return (parseYaml(readFileSync(file, 'utf8')) as RuleFile).groups.flatMap((g) => g.rules)
}

/**
 * Runs promtool. Missing promtool fails the test (Debian's `prometheus`
 * package; .ci/run installs it): the rules are the product here, and a rule
 * suite that skips when its checker is absent proves nothing.
 */
export function promtool(args: string[], cwd?: string): { status: number, output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd, timeout: 120_000 })
  if (r.error) throw new Error(`promtool is needed for the alert rule tests (apt-get install prometheus): ${r.error.message}`)
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` }
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'on', 'without', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'])

/** Metric names an expression selects (strings, label matchers, ranges, grouping and function names removed). */
export function metricNames(expr: string): string[] {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  e = e.replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '')
  e = e.replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  e = e.replace(/\b[a-z_]+\s*\(/g, '(')
  return [...new Set([...e.matchAll(/\b([A-Za-z_:][A-Za-z0-9_:]*)\b/g)].map((m) => m[1] as string).filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w)))]
}

/** GitHub's (and GitLab's) anchor for a Markdown heading. */
export function headingAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

/** For each alert a promtool unit test names: whether some case expects it firing, and whether some expects silence. */
export function ruleTestCases(testFile: string): Map<string, { fires: number, silent: number }> {
  const doc = parseYaml(readFileSync(testFile, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string, exp_alerts?: unknown[] }> }> }
  const cases = new Map<string, { fires: number, silent: number }>()
  for (const group of doc.tests) {
    for (const c of group.alert_rule_test ?? []) {
      const entry = cases.get(c.alertname) ?? { fires: 0, silent: 0 }
      if ((c.exp_alerts ?? []).length > 0) entry.fires++
      else entry.silent++
      cases.set(c.alertname, entry)
    }
  }
  return cases
}

/** The input series of a promtool unit test file: metric name and label names (target labels included). */
export function ruleTestSeries(testFile: string): Array<{ name: string, labels: string[] }> {
  const doc = parseYaml(readFileSync(testFile, 'utf8')) as { tests: Array<{ input_series?: Array<{ series: string }> }> }
  return doc.tests.flatMap((g) => g.input_series ?? []).map(({ series }) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/.exec(series)
    if (!m) throw new Error(`cannot read the series ${series}`)
    return { name: m[1] as string, labels: [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((l) => l[1] as string) }
  })
}

/** docs/operations.md's sections by anchor: `### Heading` → its text up to the next heading of that level or above. */
export function operationsSections(): Map<string, string> {
  const text = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8')
  const sections = new Map<string, string>()
  const parts = text.split(/^(?=#{1,3} )/m)
  for (const part of parts) {
    const m = /^#{1,3} (.+)$/m.exec(part)
    if (m) sections.set(headingAnchor(m[1] as string), part)
  }
  return sections
}

export type RuleFileName = 'writ.yaml' | 'multipath.yaml'

/**
 * What every rule file must show, as the module deploys it: promtool accepts
 * it; its promtool unit tests pass, with a firing and a silent case for every
 * alert (and no case for an alert that does not exist); every rule has a
 * severity, a summary, a description and a runbook_url whose section in
 * docs/operations.md says what it means, how to confirm it, what to do and
 * when to escalate.
 */
export async function checkRuleFile(t: Test, file: RuleFileName): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'writ-rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rendered = (await renderModuleRules(dir))[file === 'writ.yaml' ? 'writ' : 'multipath']
  const rules = readRules(rendered)
  t.ok(rules.length > 0, `${file} has rules`)

  const check = promtool(['check', 'rules', rendered])
  t.equal(check.status, 0, `promtool check rules accepts ${file}`, { output: check.output })

  const testFile = join(dir, `${file.replace('.yaml', '')}.rules-test.yaml`)
  writeFileSync(testFile, readFileSync(join(RULE_TESTS_DIR, basename(testFile))))
  const unit = promtool(['test', 'rules', basename(testFile)], dir)
  t.equal(unit.status, 0, `promtool test rules ${basename(testFile)} passes`, { output: unit.output })
  t.comment(`promtool test rules ${basename(testFile)}: ${unit.output.trim().replace(/\s+/g, ' ')}`)

  const cases = ruleTestCases(testFile)
  for (const r of rules) {
    const c = cases.get(r.alert)
    t.ok((c?.fires ?? 0) > 0, `${r.alert}: a unit test where it fires`)
    t.ok((c?.silent ?? 0) > 0, `${r.alert}: a unit test where it stays silent`)
  }
  const names = new Set(rules.map((r) => r.alert))
  t.same([...cases.keys()].filter((a) => !names.has(a)), [], 'every alert the unit tests name is a rule (a misspelt one would pass silently)')
  t.equal(names.size, rules.length, 'alert names are unique')

  const sections = operationsSections()
  for (const r of rules) {
    t.match(r.labels.severity, /^(page|warning)$/, `${r.alert}: severity page or warning`)
    t.ok(typeof r.annotations.summary === 'string' && r.annotations.summary.length > 10, `${r.alert}: summary`)
    t.ok(typeof r.annotations.description === 'string' && r.annotations.description.length > 40, `${r.alert}: description`)
    const url = r.annotations.runbook_url ?? ''
    t.equal(url, `${TEST_RUNBOOK_URL}#${r.alert.toLowerCase()}`, `${r.alert}: runbook_url is its own section of docs/operations.md`)
    const section = sections.get(r.alert.toLowerCase())
    t.ok(section, `${r.alert}: docs/operations.md has the section #${r.alert.toLowerCase()}`)
    for (const part of ['What it means', 'Confirm', 'Do', 'Escalate']) {
      t.match(section ?? '', new RegExp(`^\\*\\*${part}\\*\\*`, 'm'), `${r.alert}: the runbook section says "${part}"`)
    }
  }
}

/** A /metrics (or textfile) exposition: each metric's TYPE and the label names its samples carry. */
export interface Exposition { types: Map<string, string>, labels: Map<string, Set<string>> }

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>()
  const labels = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line))) { types.set(m[1] as string, m[2] as string); continue }
    if (line.startsWith('#') || line.trim() === '') continue
    if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line))) {
      const set = labels.get(m[1] as string) ?? new Set<string>()
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(l[1] as string)
      labels.set(m[1] as string, set)
    }
  }
  return { types, labels }
}

/** Whether an exposition exports `name`: as a metric of its own, or as a histogram's _bucket/_count/_sum series. */
export function exports(e: Exposition, name: string): boolean {
  if (e.types.has(name)) return true
  const base = /^(.*)_(bucket|count|sum)$/.exec(name)?.[1]
  return base !== undefined && ['histogram', 'summary'].includes(e.types.get(base) ?? '')
}
