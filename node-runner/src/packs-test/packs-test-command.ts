/**
 * `writ-node-runner packs test <pack dir>... [--case NAME]...`: runs each
 * pack's `test/cases.yaml` through the real path — a signed writ to a real
 * runner over a private nats-server — against private services, and prints
 * one line per case and `cases: N passed, N failed, N skipped`. Exit 1 on
 * any failure, 2 on a usage error.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { CaseFileError, caseName, loadCaseFile } from './case-file.js'
import { CaseReport } from './case-report.js'
import { runPackCases } from './pack-run.js'
import { startPrivateNats, type PrivateNats } from './private-nats.js'
import { endAllSteps } from './host-command.js'
import { daemonUser, prepareSandbox, reenterInSandbox, sandboxState, sandboxUnavailable } from './sandbox.js'
import { parseExternalService, startsLocally, type ExternalService } from './services/index.js'

export const PACKS_TEST_USAGE = `usage: writ-node-runner packs test <pack dir>... [flags]

Runs each pack's test/cases.yaml: every case as a signed writ to a real runner
over a private nats-server, against private services started on this host.

  --case NAME             run only this case (its name, or every case of an action id); repeatable
  --service NAME=ADDRESS  a service the caller runs (unix:///path.sock or http://host:port): the case
                          files' host name NAME maps to it, and packs test starts none; repeatable
  --allow-shell-packs     run shell actions (the runner's --allow-shell-packs); otherwise their cases are skipped
  --keep                  keep the run's temp folder (service data, runner journals) and print where
`

/** A folder with pack.yaml is a pack; any other folder holds packs. */
function packDirsUnder(dirs: readonly string[]): string[] {
  const out: string[] = []
  for (const d of dirs) {
    const dir = resolve(d)
    if (existsSync(join(dir, 'pack.yaml'))) { out.push(dir); continue }
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${d}: not a pack folder (no pack.yaml) nor a folder of packs`)
    out.push(...readdirSync(dir).sort().map((n) => join(dir, n)).filter((p) => existsSync(join(p, 'pack.yaml'))))
  }
  return out
}

export async function runPacksTest(argv: readonly string[], rawArgv: readonly string[]): Promise<number> {
  let values: { case?: string[], service?: string[], 'allow-shell-packs'?: boolean, keep?: boolean, help?: boolean }
  let positionals: string[]
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv], allowPositionals: true, strict: true,
      options: { case: { type: 'string', multiple: true }, service: { type: 'string', multiple: true }, 'allow-shell-packs': { type: 'boolean' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }))
  } catch (e) { process.stderr.write(`packs test: ${(e as Error).message}\n\n${PACKS_TEST_USAGE}`); return 2 }
  if (values.help) { process.stdout.write(PACKS_TEST_USAGE); return 0 }
  if (positionals.length === 0) { process.stderr.write(PACKS_TEST_USAGE); return 2 }
  let dirs: string[]
  let external: ExternalService[]
  try {
    dirs = packDirsUnder(positionals)
    external = (values.service ?? []).map(parseExternalService)
  } catch (e) { process.stderr.write(`packs test: ${(e as Error).message}\n`); return 2 }
  const only = new Set(values.case ?? [])
  const externalByName = new Map(external.map((s) => [s.name, s.address]))

  // Read every case file first: which services the run needs decides where it runs.
  const needed = new Set<string>()
  const matched = new Set<string>()
  for (const dir of dirs) {
    try {
      const file = loadCaseFile(dir)
      for (const c of file?.cases ?? []) if (only.size === 0 || only.has(caseName(c)) || only.has(c.action)) { matched.add(caseName(c)); matched.add(c.action); for (const s of file?.services ?? []) needed.add(s) }
    } catch (e) { if (!(e instanceof CaseFileError)) throw e }
  }
  const unknown = [...only].filter((n) => !matched.has(n) && !/#\d+$/.test(n))
  if (unknown.length > 0) { process.stderr.write(`packs test: no case named ${unknown.map((n) => `"${n}"`).join(', ')} in ${positionals.join(' ')}\n`); return 2 }

  const state = sandboxState()
  let sandbox: { inside: boolean, unavailable?: string | undefined } = { inside: state.inside }
  const local = [...needed].filter((s) => startsLocally(s, externalByName))
  if (!state.inside && local.length > 0) {
    const why = sandboxUnavailable()
    if (why === undefined) {
      // Inside, /tmp is the cases' own: the run keeps its files (service data, journals) in /var/tmp.
      const dir = mkdtempSync(join('/var/tmp', 'writ-packs-test-'))
      try { return await reenterInSandbox(rawArgv, dir) } finally {
        if (values.keep) process.stdout.write(`# kept ${dir}\n`)
        else rmSync(dir, { recursive: true, force: true })
      }
    }
    sandbox = { inside: false, unavailable: why }
  }
  if (state.inside && external.some((s) => !s.address.startsWith('unix://'))) {
    process.stderr.write('packs test: the run starts services in a private network namespace, so --service addresses must be unix sockets there\n')
    return 2
  }
  return runInPlace(dirs, { only, external, sandbox, keep: values.keep === true, allowShellPacks: values['allow-shell-packs'] === true, hostNames: local })
}

async function runInPlace(dirs: readonly string[], o: {
  only: Set<string>, external: ExternalService[], sandbox: { inside: boolean, unavailable?: string | undefined }, keep: boolean, allowShellPacks: boolean, hostNames: string[]
}): Promise<number> {
  const report = new CaseReport((line) => process.stdout.write(`${line}\n`))
  const state = sandboxState()
  // Inside the sandbox the folder is the outer command's: it holds mount points until the sandbox ends, so only the outer one removes it.
  const workDir = state.inside ? state.dir : mkdtempSync(join(tmpdir(), 'writ-packs-test-'))
  const root = state.inside ? state.originalUid === 0 : (process.getuid?.() ?? 0) === 0
  const stop = (): void => { if (!o.keep && !state.inside) rmSync(workDir, { recursive: true, force: true }) }
  let nats: PrivateNats | undefined
  // Interrupted: what the run started ends with it (inside the sandbox the namespace's end would see to that too).
  const interrupted = (): void => { endAllSteps(); nats?.kill(); stop(); process.exit(130) }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    if (state.inside) {
      const sockets = o.external.filter((x) => x.address.startsWith('unix://')).map((x) => dirname(x.address.slice('unix://'.length)))
      prepareSandbox(workDir, o.hostNames, [...dirs, ...sockets])
      // Servers run as another user: they may pass through the run's folder (not list it) to their own.
      chmodSync(workDir, 0o711)
    }
    const server = await startPrivateNats(join(workDir, 'nats'))
    nats = server
    try {
      for (const dir of dirs) {
        // One pack's breakdown (a runner that would not start, say) is that pack's failure; the others still run.
        await runPackCases(dir, {
          natsUrl: server.url, workDir, report, only: o.only, external: o.external, sandbox: o.sandbox,
          daemonUser: state.inside ? daemonUser(state) : undefined, root, allowShellPacks: o.allowShellPacks,
        }).catch((e: Error) => report.error(`${dir}: ${e.message}`))
      }
    } finally { await server.stop() }
  } catch (e) {
    report.error(`packs test could not run: ${(e as Error).message}`)
  } finally {
    if (o.keep && !state.inside) report.note(`kept ${workDir}`)
    stop()
  }
  process.stdout.write(`${report.summary()}\n`)
  return report.total.failed > 0 ? 1 : 0
}
