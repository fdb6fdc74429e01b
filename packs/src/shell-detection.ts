/**
 * Decides whether a command line reaches a shell or an interpreter, over the
 * whole line: the binary and every argv element, each by its basename and by
 * its name with any version suffix stripped (`/usr/bin/python3.11` → python).
 * A shell reached directly, behind a wrapper (`timeout`, `env`, `sudo`,
 * `nsenter`, `find … -exec` …) or named as an argument makes the action a
 * shell action, which runners refuse unless explicitly allowed. Each finding
 * carries a reason a pack author can act on.
 */
import { posix } from 'node:path'
import { TEMPLATE_RE } from './pack-schema.js'

/** Shells, wherever they appear on the line. */
const SHELLS = new Set([
  'sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'pdksh', 'oksh', 'lksh', 'ash', 'yash', 'rbash', 'fish', 'csh', 'tcsh',
  'elvish', 'xonsh', 'pwsh', 'powershell', 'busybox', 'toybox',
])

/**
 * Shells with names that are also everyday words (`systemctl restart ssh`),
 * and programs that hand their command line to a shell (su -c, script -c,
 * watch, ssh's remote side, terminal multiplexers): shells as the binary or
 * where a wrapper takes the program to run.
 */
const COMMAND_POSITION_SHELLS = new Set(['su', 'script', 'watch', 'ssh', 'tmux', 'screen', 'es', 'rc', 'nu'])

/** Programs that run code given to them as text or as a file an argument may name. */
const INTERPRETERS = new Set([
  'python', 'pypy', 'perl', 'ruby', 'irb', 'php', 'lua', 'luajit', 'tclsh', 'wish', 'expect', 'rscript', 'julia',
  'deno', 'bun', 'nodejs', 'osascript', 'awk', 'gawk', 'mawk', 'nawk', 'sed', 'erl', 'escript', 'elixir', 'iex',
  'guile', 'racket', 'jshell', 'groovy', 'jrunscript', 'gdb', 'lldb', 'vim', 'nvim', 'emacs',
])

/**
 * Interpreters whose names are also everyday words in other programs' argv
 * (`nomad node status`, `iscsiadm -m node`): they count as the binary, or
 * where a wrapper takes the program to run, not anywhere else.
 */
const COMMAND_POSITION_INTERPRETERS = new Set(['node', 'r', 'make', 'vi', 'ex'])

/** Programs that run another program named on their own command line. */
const WRAPPERS = new Set([
  'timeout', 'env', 'nice', 'nohup', 'setsid', 'stdbuf', 'sudo', 'doas', 'xargs', 'nsenter', 'chroot', 'unshare',
  'ionice', 'taskset', 'runuser', 'sg', 'newgrp', 'setpriv', 'capsh', 'chrt', 'prlimit', 'numactl', 'cgexec',
  'systemd-run', 'flock', 'sshpass', 'strace', 'ltrace', 'time', 'nocache', 'unbuffer', 'faketime', 'fakeroot',
  'firejail', 'bwrap', 'proot', 'catchsegv', 'valgrind', 'setarch', 'linux32', 'linux64', 'systemd-nspawn',
  'parallel', 'dbus-run-session', 'dbus-launch', 'pkexec', 'start-stop-daemon', 'chpst', 'daemonize', 'torsocks',
  'proxychains', 'proxychains4', 'trickle', 'cpulimit', 'lxc-attach', 'machinectl', 'command', 'exec',
])

/** Programs that become wrappers after one of these literal subcommand words (`docker exec`, `ip netns exec`). */
const SUBCOMMAND_WRAPPERS: Record<string, ReadonlySet<string>> = {
  docker: new Set(['exec', 'run']), podman: new Set(['exec', 'run']), nerdctl: new Set(['exec', 'run']),
  crictl: new Set(['exec', 'run']), ctr: new Set(['exec', 'run']), kubectl: new Set(['exec', 'run', 'debug']),
  oc: new Set(['exec', 'run', 'debug', 'rsh']), nomad: new Set(['exec']), ip: new Set(['exec']),
}

/**
 * Clients whose own command language can start a shell: psql's `\!`,
 * mysql's and mariadb's `\!` and `system`, sqlite3's `.shell` and `.system`,
 * mongosh's JavaScript. Handing one of them a command that an argument
 * writes makes the action a shell action, whatever the rest of the command
 * says. Each names the options that take a command (or a file of commands),
 * and whether its positional arguments are commands too.
 */
const SHELL_ESCAPE_CLIENTS: Record<string, { escape: string, options: readonly string[], positional: boolean }> = {
  psql: { escape: '\\! runs a shell', options: ['-c', '--command', '-f', '--file'], positional: false },
  mysql: { escape: '\\! and system run a shell', options: ['-e', '--execute'], positional: false },
  mariadb: { escape: '\\! and system run a shell', options: ['-e', '--execute'], positional: false },
  sqlite3: { escape: '.shell and .system run a shell', options: ['-cmd'], positional: true },
  mongosh: { escape: 'its JavaScript runs anything', options: ['--eval', '-f', '--file'], positional: true },
  mongo: { escape: 'its JavaScript runs anything', options: ['--eval'], positional: true },
}

/**
 * Why `client argv…` hands the client a command an argument writes; empty
 * when it does not. Covers `-c {{…}}`, `--command={{…}}`, `-c{{…}}`, a short
 * option cluster ending in the option (`-XAtc {{…}}`) and, for clients that
 * read commands from positional arguments, any templated positional.
 */
function shellEscapeReasons(client: string, argv: readonly string[]): string[] {
  const spec = SHELL_ESCAPE_CLIENTS[client]
  if (!spec) return []
  const short = spec.options.filter((o) => /^-[A-Za-z]$/.test(o)).map((o) => o.slice(1))
  const takesCommand = (el: string): boolean =>
    spec.options.includes(el) || short.some((letter) => new RegExp(`^-[A-Za-z]*${letter}$`).test(el))
  const reasons: string[] = []
  argv.forEach((el, i) => {
    if (!hasTemplate(el)) return
    const prev = i > 0 ? argv[i - 1] as string : ''
    const attached = spec.options.some((o) => el.startsWith(o.startsWith('--') ? `${o}=` : o) && el !== o)
    const positional = spec.positional && !prev.startsWith('-')
    if (takesCommand(prev) || attached) {
      reasons.push(`argv[${i}] "${el}" is a command ${client} runs, and ${client}'s ${spec.escape}: an argument could reach it`)
    } else if (positional) {
      // Without knowing which options take values, any templated positional may be one of its commands.
      reasons.push(`argv[${i}] "${el}" may be a command ${client} runs (it reads commands from its positional arguments), and ${client}'s ${spec.escape}: an argument could reach it`)
    }
  })
  return reasons
}

/** `find` runs a program named after one of these. */
const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir'])

/** Environment variables that make a program load or run other code. */
const CODE_ENV = /^(?:LD_|DYLD_)|^(?:PATH|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|IFS|PROMPT_COMMAND|PYTHONPATH|PYTHONSTARTUP|PYTHONHOME|PERL5LIB|PERL5OPT|PERLLIB|RUBYOPT|RUBYLIB|NODE_OPTIONS|NODE_PATH|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|GIT_SSH|GIT_SSH_COMMAND|GIT_EXEC_PATH|PAGER|EDITOR|VISUAL|SSH_ASKPASS|SUDO_ASKPASS|GCONV_PATH|LESSOPEN)$/

/** True for an environment variable that makes a program load or run other code (`LD_PRELOAD`, `PATH`, `PYTHONPATH`, …). */
export function isCodeEnvName(name: string): boolean {
  return CODE_ENV.test(name)
}

/**
 * The names a command-line element goes by: its basename (of its first word,
 * so `"/bin/sh -c"` counts), and that name with a version suffix stripped
 * (`/usr/bin/python3.11` → python3.11, python; `php8.2` → php).
 */
export function programNames(element: string): string[] {
  const base = posix.basename(element.trim().split(/\s+/)[0] ?? '').toLowerCase()
  const stripped = base.replace(/(?:[-.]?\d+)+$/, '')
  return stripped && stripped !== base ? [base, stripped] : [base]
}

function hasTemplate(s: string): boolean {
  return new RegExp(TEMPLATE_RE.source).test(s)
}

function kindOf(names: readonly string[], commandPosition: boolean): { kind: 'a shell' | 'an interpreter', name: string } | undefined {
  for (const name of names) {
    if (SHELLS.has(name) || (commandPosition && COMMAND_POSITION_SHELLS.has(name))) return { kind: 'a shell', name }
    if (INTERPRETERS.has(name) || (commandPosition && COMMAND_POSITION_INTERPRETERS.has(name))) return { kind: 'an interpreter', name }
  }
  return undefined
}

function isWrapper(names: readonly string[]): string | undefined {
  return names.find((n) => WRAPPERS.has(n))
}

/** Names an element may stand for: itself, and the value of a `--opt=value` element. */
function candidates(element: string): string[] {
  const out = [element]
  const eq = /^-{1,2}[A-Za-z0-9][A-Za-z0-9-]*=(.+)$/.exec(element)
  if (eq?.[1]) out.push(eq[1])
  return out
}

/**
 * Every reason `binary argv…` reaches a shell or an interpreter; empty when it
 * does not. `env` is the action's environment templates (name → template).
 */
export function shellReasons(binary: string, argv: readonly string[], env: Readonly<Record<string, string>> = {}): string[] {
  const reasons: string[] = []
  const binNames = programNames(binary)
  const binName = binNames[0] as string
  const binKind = kindOf(binNames, true)
  if (binKind) reasons.push(`the binary "${binary}" is ${binKind.kind} (${binKind.name})`)

  // From which argv index on an element may be the program a wrapper runs, and which wrapper.
  let wrappedFrom = Number.POSITIVE_INFINITY
  let wrapper = ''
  const binWrapper = isWrapper(binNames)
  if (binWrapper) { wrappedFrom = 0; wrapper = `the wrapper "${binWrapper}"` }
  const subcommands = SUBCOMMAND_WRAPPERS[binName]
  argv.forEach((el, i) => {
    if (i >= wrappedFrom) return
    if (subcommands?.has(el)) { wrappedFrom = i + 1; wrapper = `"${binName} ${el}"` }
    if (binName === 'find' && FIND_EXEC.has(el)) { wrappedFrom = i + 1; wrapper = `find ${el}` }
  })

  argv.forEach((el, i) => {
    const commandPosition = i >= wrappedFrom
    if (hasTemplate(el)) {
      if (commandPosition) reasons.push(`argv[${i}] "${el}" takes an argument where ${wrapper} names the program it runs: an argument could choose the program`)
      return
    }
    for (const c of candidates(el)) {
      const found = kindOf(programNames(c), commandPosition)
      if (!found) continue
      reasons.push(`argv[${i}] "${el}" names ${found.kind} (${found.name})${commandPosition ? ` run by ${wrapper}` : ''}`)
      break
    }
  })

  const client = binNames.find((n) => n in SHELL_ESCAPE_CLIENTS)
  if (client) reasons.push(...shellEscapeReasons(client, argv))

  for (const [name, template] of Object.entries(env)) {
    if (CODE_ENV.test(name) && hasTemplate(template)) reasons.push(`execution.env.${name} takes an argument: it can make the program load or run other code`)
  }
  return reasons
}
