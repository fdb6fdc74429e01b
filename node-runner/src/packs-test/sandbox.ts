/**
 * Where `packs test` runs when it starts services: a private network, mount
 * and PID namespace (util-linux `unshare`). Its loopback is its own, so the
 * services listen on their default ports (redis-cli, for one, takes no port
 * from the environment) and the machine's shared instances on those ports
 * cannot even be reached; the service host names the case files use
 * (`PGHOST: postgres`) resolve to 127.0.0.1 through an /etc/hosts seen only
 * inside; /tmp is its own; and everything started inside — servers, their helpers (epmd), a
 * case's background processes — ends with it. Root enters it directly; any
 * other user through a user namespace of its own.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import type { DaemonUser } from './services/daemon.js'

/** Set (to the uid that started the run) in the re-executed command inside the sandbox. */
export const SANDBOX_ENV = 'WRIT_PACKS_TEST_SANDBOX'
/** The run's folder, made (and removed) outside the sandbox: inside, it holds mount points. */
export const SANDBOX_DIR_ENV = 'WRIT_PACKS_TEST_DIR'

/** The unprivileged account servers run as when the run is root (`nobody` on Debian). */
const NOBODY = 65534

export type SandboxState =
  | { inside: true, originalUid: number, dir: string }
  | { inside: false, unavailable?: string }

/** Whether this process is the sandboxed re-execution, and as whom the run was started. */
export function sandboxState(env: NodeJS.ProcessEnv = process.env): SandboxState {
  const v = env[SANDBOX_ENV]
  const dir = env[SANDBOX_DIR_ENV]
  return v !== undefined && /^\d+$/.test(v) && dir ? { inside: true, originalUid: Number(v), dir } : { inside: false }
}

function unshareArgs(uid: number): string[] {
  return ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--kill-child', ...(uid === 0 ? [] : ['--user', '--map-root-user'])]
}

/** Undefined when a sandbox can be made here; else why not (missing unshare or ip, namespaces not allowed). */
export function sandboxUnavailable(): string | undefined {
  const uid = process.getuid?.() ?? 0
  const r = spawnSync('unshare', [...unshareArgs(uid), '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8', timeout: 15_000 })
  if (r.error) return `cannot run unshare (util-linux): ${r.error.message}`
  if (r.status !== 0) return `no private network namespace here: unshare/ip said: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? `exit ${r.status}`}`
  return undefined
}

/**
 * Runs this same command again inside a new sandbox, in the folder `dir`
 * (outside /tmp), and resolves with its exit code; stdio is shared, and
 * SIGINT/SIGTERM end the sandbox and all in it. The folder is the caller's to remove once
 * this resolves: by then the sandbox, and every mount point in the folder,
 * is gone.
 */
export function reenterInSandbox(argv: readonly string[], dir: string): Promise<number> {
  const uid = process.getuid?.() ?? 0
  const child = spawn('unshare', [...unshareArgs(uid), '--', process.execPath, ...process.execArgv, ...argv], {
    stdio: 'inherit', env: { ...process.env, [SANDBOX_ENV]: String(uid), [SANDBOX_DIR_ENV]: dir },
  })
  // unshare passes no signal on to the sandbox; killing it does end it (--kill-child), and with the
  // namespace's first process goes everything in it: servers, runner, a case's background work.
  const forward = (): void => { child.kill('SIGKILL') }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return new Promise((resolve) => {
    child.once('error', (e) => { process.stderr.write(`packs test: cannot enter the sandbox: ${e.message}\n`); resolve(2) })
    child.once('exit', (code, sig) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? (sig ? 1 : 0))
    })
  })
}

/**
 * Inside the sandbox: brings loopback up, makes the service host names
 * resolve to it, and gives the cases a /tmp of their own (they leave pid
 * files and logs there, under fixed names two runs would share), with the
 * folders the run needs from the host's /tmp (pack folders, the folders of
 * `--service` sockets) still at their paths. `dir` must not be under /tmp.
 * Throws with the reason when any step fails.
 */
export function prepareSandbox(dir: string, hostNames: readonly string[], keepFolders: readonly string[]): void {
  const run = (argv: string[], what: string): void => {
    const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${what}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`)
  }
  run(['ip', 'link', 'set', 'lo', 'up'], 'cannot bring loopback up in the sandbox')
  const hosts = join(dir, 'hosts')
  const names = [...new Set(['localhost', hostname(), ...hostNames])].join(' ')
  writeFileSync(hosts, `127.0.0.1 ${names}\n::1 localhost ip6-localhost ip6-loopback\n`)
  run(['mount', '--bind', hosts, '/etc/hosts'], 'cannot give the sandbox its own /etc/hosts')
  const underTmp = [...new Set(keepFolders.map((f) => resolve(f)).filter((f) => f.startsWith('/tmp/')))]
  if (underTmp.length === 0 && hostNames.length === 0) return
  const hostTmp = join(dir, 'host-tmp')
  mkdirSync(hostTmp)
  run(['mount', '--bind', '/tmp', hostTmp], 'cannot keep the host\'s /tmp within reach')
  run(['mount', '-t', 'tmpfs', '-o', 'mode=1777,size=512m', 'writ-packs-test', '/tmp'], 'cannot give the sandbox its own /tmp')
  for (const folder of underTmp) {
    mkdirSync(folder, { recursive: true })
    run(['mount', '--bind', join(hostTmp, folder.slice('/tmp/'.length)), folder], `cannot reach ${folder} from the sandbox`)
  }
}

/**
 * Who servers run as. A root run drops them to `nobody` with setpriv; a
 * run that is root only in its own user namespace nests one more, where
 * the server's uid is not 0 (PostgreSQL and MariaDB refuse root) and the
 * files the run created are its own.
 */
export function daemonUser(state: Extract<SandboxState, { inside: true }>): DaemonUser {
  if (state.originalUid === 0) {
    return { uid: NOBODY, gid: NOBODY, wrap: (argv) => ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', ...argv] }
  }
  return { uid: 0, gid: 0, wrap: (argv) => ['unshare', '--user', `--map-user=${NOBODY}`, `--map-group=${NOBODY}`, '--', ...argv] }
}
