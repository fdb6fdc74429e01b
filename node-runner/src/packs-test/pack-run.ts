/**
 * One pack's cases: its case file read and checked (risk accountability
 * included), its services started, a runner for it on the run's NATS, every
 * selected case run in order — the services reset after a case whose action
 * changes things — and, at the end, the runner's whole journal searched for
 * the canaries once more.
 */
import { mkdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { RISK_ORDER, loadPacks, type LoadedPack } from '@writ/packs'
import { CaseFileError, caseName, loadCaseFile, type Case, type CaseFile } from './case-file.js'
import type { CaseReport } from './case-report.js'
import { runCase, skipReason, type CaseOutcome, type PackContext } from './case-execution.js'
import { findLeaks } from './canary-scan.js'
import { startRunnerUnderTest } from './runner-under-test.js'
import { mapExternalAddresses, planService, type DaemonUser, type ExternalService, type RunningService } from './services/index.js'

export interface PackRunOptions {
  natsUrl: string
  workDir: string
  report: CaseReport
  /** `--case` names; empty runs every case. */
  only: ReadonlySet<string>
  external: readonly ExternalService[]
  sandbox: { inside: boolean, unavailable?: string | undefined }
  /** Who servers run as (inside the sandbox only). */
  daemonUser?: DaemonUser | undefined
  root: boolean
  allowShellPacks: boolean
}

const selected = (c: Case, only: ReadonlySet<string>): boolean => only.size === 0 || only.has(caseName(c)) || only.has(c.action)

/** High and critical actions that neither have a case nor a declared reason, when the file promises completeness. */
function unaccounted(pack: LoadedPack, file: CaseFile): string[] {
  if (file.risk_accountability?.mode !== 'complete') return []
  const covered = new Set([...file.cases.map((c) => c.action), ...Object.keys(file.risk_accountability.exceptions ?? {})])
  return [...pack.actions.values()]
    .filter((a) => RISK_ORDER[a.spec.risk] >= RISK_ORDER.high && !covered.has(a.id))
    .map((a) => `${a.id} (${a.spec.risk}) has no case and no declared reason`)
}

/** Case names made unique within the file, as printed and as `--case` matches them. */
function namedCases(cases: readonly Case[]): Array<{ c: Case, name: string }> {
  const seen = new Map<string, number>()
  return cases.map((c) => {
    const base = caseName(c)
    const n = (seen.get(base) ?? 0) + 1
    seen.set(base, n)
    return { c, name: n === 1 ? base : `${base}#${n}` }
  })
}

async function startServices(file: CaseFile, packId: string, env: Record<string, string>, opts: PackRunOptions): Promise<{ running: RunningService[], skip?: string }> {
  const external = new Map(opts.external.map((s) => [s.name, s.address]))
  const running: RunningService[] = []
  for (const name of file.services) {
    const plan = planService(name, external, opts.sandbox)
    if (plan.kind === 'unavailable') return { running, skip: plan.reason }
    if (plan.kind === 'external') { opts.report.note(`${packId}: service ${name} is ${plan.address} (--service)`); continue }
    if (plan.kind === 'this-host') { opts.report.note(`${packId}: service ${name} is this host`); continue }
    const dir = join(opts.workDir, packId, 'services', name)
    mkdirSync(dir, { recursive: true })
    try {
      const svc = await plan.start({ name, dir, env, user: opts.daemonUser as DaemonUser })
      running.push(svc)
      const pinned = file.versions?.find((v) => v.default)?.version
      opts.report.note(`${packId}: service ${name}: ${svc.describe}${pinned ? ` (the cases were written against ${pinned})` : ''}`)
    } catch (e) {
      return { running, skip: `service ${name} could not start: ${(e as Error).message}` }
    }
  }
  return { running }
}

export async function runPackCases(dir: string, opts: PackRunOptions): Promise<void> {
  const { report } = opts
  let file: CaseFile | undefined
  try { file = loadCaseFile(dir) } catch (e) {
    if (e instanceof CaseFileError) { report.error(e.message); return }
    throw e
  }
  const load = loadPacks([dir])
  const pack = load.packs[0]
  if (!pack) { report.error(`${dir}: the pack did not load: ${load.errors[0]?.message ?? 'no pack.yaml'}`); return }
  if (!file) { report.note(`${pack.id}: no test/cases.yaml`); return }
  const started = Date.now()
  report.startPack()
  for (const problem of unaccounted(pack, file)) report.fail(pack.id, 'risk_accountability', [problem])
  const cases = namedCases(file.cases).filter(({ c }) => selected(c, opts.only))
  for (const [action, why] of Object.entries(file.risk_accountability?.exceptions ?? {})) {
    if (opts.only.size === 0 || opts.only.has(action)) report.skip(pack.id, action, `${why} (risk_accountability exception: no case)`)
  }
  if (cases.length > 0) await runSelected(pack, file, cases, dir, load.errors, opts)
  report.endPack(pack.id, relative(process.cwd(), dir) || dir, (Date.now() - started) / 1000)
}

async function runSelected(
  pack: LoadedPack, file: CaseFile, cases: Array<{ c: Case, name: string }>, dir: string, errors: ReturnType<typeof loadPacks>['errors'], opts: PackRunOptions,
): Promise<void> {
  const { report } = opts
  const env = mapExternalAddresses(file.env, opts.external)
  const services = await startServices(file, pack.id, env, opts)
  try {
    if (services.skip) { for (const { name } of cases) report.skip(pack.id, name, services.skip); return }
    // Commands inherit every variable the cases declare, as the operator of a host running this pack would allow.
    const declared = [...new Set([...Object.keys(file.env), ...file.cases.flatMap((c) => Object.keys(c.env ?? {}))])]
    const runner = await startRunnerUnderTest({
      natsUrl: opts.natsUrl, workDir: join(opts.workDir, pack.id, 'runner'), packDir: dir, runnerEnv: env, inheritEnv: declared, allowShellPacks: opts.allowShellPacks,
    })
    const ctx: PackContext = {
      file, runner, env, root: opts.root, allowShellPacks: opts.allowShellPacks,
      loadErrors: new Map(errors.filter((e) => e.action).map((e) => [e.action as string, `${e.field ? `${e.field}: ` : ''}${e.message}`])),
    }
    let dirty = false
    let broken: string | undefined
    try {
      for (const { c, name } of cases) {
        const action = runner.action(c.action)
        const skip = broken ?? skipReason(c, action, ctx)
        if (skip || !action) { report.skip(pack.id, name, skip ?? 'no such action'); continue }
        // A case after one whose action changed things starts from the seeded state again.
        if (dirty) {
          try { for (const svc of services.running) await svc.reset() } catch (e) {
            broken = `the services could not be reset after the case before: ${(e as Error).message}`
            report.skip(pack.id, name, broken)
            continue
          }
        }
        const outcome = await runCase(c, ctx).catch((e: Error): CaseOutcome => ({ verdict: 'fail', problems: [`packs test could not run the case: ${e.message}`] }))
        dirty = RISK_ORDER[action.spec.risk] >= RISK_ORDER.medium
        if (outcome.verdict === 'ok') report.ok(pack.id, name)
        else if (outcome.verdict === 'fail') report.fail(pack.id, name, outcome.problems)
        else report.skip(pack.id, name, outcome.reason)
      }
    } finally {
      const journal = await runner.stop()
      const secrets = Object.fromEntries(file.secret_env.filter((n) => env[n] !== undefined).map((n) => [n, env[n] as string]))
      for (const leak of findLeaks(secrets, [['runner journal', journal]])) report.fail(pack.id, 'journal', [`leaked ${leak}`])
    }
  } finally {
    for (const svc of services.running) await svc.stop().catch(() => {})
  }
}
