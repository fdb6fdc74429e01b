/**
 * `writ`: run an action, list nodes and actions, verify or export the audit
 * chain, generate keys and tokens, serve the control plane.
 * Talks to `WRIT_URL` with `WRIT_TOKEN` (or `WRIT_AGENT_TOKEN`).
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { generateSigningKeyPair, nscCommands } from '@writ/packs/protocol'
import { cmdAudit } from './audit-commands.js'
import { cmdDecide, cmdPending } from './approval-commands.js'
import { cmdGrant, cmdGrants, cmdRevoke } from './grant-commands.js'
import { typedArgs } from './typed-args.js'
import { cmdAck, cmdBreakGlass, cmdReviews } from './break-glass-commands.js'
import { cmdFreeze, cmdFreezes, cmdUnfreeze } from './freeze-commands.js'
import { cmdApprovers } from './approver-commands.js'
import { ApiError, WritClient } from './cli-client.js'
import { EXIT, UsageError, type Io } from './cli-io.js'
import { cmdShow } from './show-command.js'
import { cmdDev } from './dev-command.js'
import { cmdPlan, cmdRunPlan } from './plan-commands.js'
import { terminalBlock, terminalJson, terminalLine } from './terminal-text.js'
import { ConfigError } from '../config.js'
import { serve } from '../main.js'
import { isTerminal } from '../runs/index.js'
import { generateToken, hashToken } from '../auth/index.js'

const USAGE = `usage:
  writ run <action> --node NODE [--arg k=v]... --reason "why" [--session ID] [--json]
  writ run <action> --select 'NodePool == "storage"' | --nodes a,b,c  [--arg k=v]... --reason "why"   (a plan: one request, many nodes)
  writ plan <plan> [--wait SECONDS] [--json]
  writ status <run> [--wait SECONDS] [--json]
  writ show <run> [--json]                             (summary, arguments, expected, evidence, approvals, output)
  writ nodes [--json]
  writ actions [query] [--node NODE] [--risk R] [--json]
  writ pending [--node NODE] [--mine] [--json]        (operators: runs waiting for approval)
  writ approve <run> [--comment "…"] [--binding PREFIX] [--yes]   (operators; decides the binding it prints, or the one pinned;
                                                          on a terminal asks y/N first, --yes skips that)
  writ deny <run> --reason "why" [--binding PREFIX]       (operators; the agent is told)
  writ grant <action> --to PRINCIPAL --node NODE|'*' (--arg k=v... | --any-args) --for 1h [--uses N] --reason "why"
                                                          (operators: a standing grant; runs it covers dispatch without asking)
  writ grant approve <grant> [--digest HEX]              (operators: co-sign a grant that needs a quorum)
  writ grants [--status active|pending|revoked|expired|used_up] [--to PRINCIPAL] [--json]   (operators)
  writ revoke <grant> [--reason "why"]                    (operators: the grant covers nothing from the next request on)
  writ break-glass <run> --reason "why" [--binding PREFIX] [--yes]   (operators; runs it alone where its policy rule says
                                                          break_glass: true; on a terminal asks y/N naming action and node)
  writ reviews [--open] [--json]                      (operators: break-glass runs and who acknowledged them)
  writ ack <review> [--comment "…"]                   (operators: acknowledge another approver's break-glass)
  writ freeze --reason "why" [--scope agents|PRINCIPAL]   (operators: refuse every change-making request from the scope, hold approved runs; reads go on)
  writ unfreeze [--scope agents|PRINCIPAL]                (operators: lift it; held runs are dispatched)
  writ freezes [--json]                                   (what is frozen, by whom, why)
  writ audit verify --trusted-keys PEM... [--file export.jsonl | --nats URL] [--witness JOURNAL]... [--grace 60s] [--json]
                    [--metrics-textfile DIR/writ_audit_verify.prom]   (on a schedule: the result for node_exporter)
  writ audit export [--nats URL]            (JSON lines on stdout; --nats-creds FILE, --nats-ca FILE,
                                            --nats-tls-server-name NAME for both)
  writ nats permissions                     (the nsc commands for the runners' and the control plane's NATS users)
  writ keys generate [--out DIR]                      (the dispatch signing key pair)
  writ keys session --out FILE                        (the portal's session-cookie key)
  writ keys approvers [--out DIR]                     (the approvers key pair that signs the approver registry; keep it offline)
  writ approvers list [--json]                        (operators: registered passkeys)
  writ approvers export --key FILE --policy FILE --out FILE [--from FILE]   (sign the approver registry)
  writ token generate [--kind agent|operator]
  writ serve --config FILE
  writ dev [--port N] [--state-dir DIR] [--start-nats] [--packs DIR]... [--allow-shell-packs]
                                              (NATS + control plane + a runner for this host; --packs adds pack folders)

exit codes: 0 done/succeeded, 1 the run failed, 2 usage or refused request (or another end), 3 waiting for approval,
  4 not finished yet, 5 denied, 6 not confirmed (writ approve answered no)

environment: WRIT_URL (default http://127.0.0.1:8480), WRIT_TOKEN (else WRIT_AGENT_TOKEN; WRIT_OPERATOR_TOKEN for pending/approve/deny/grant/grants/revoke/break-glass/reviews/ack/freeze/unfreeze), WRIT_NATS_URL, WRIT_NATS_CREDS,
  WRIT_AUDIT_TRUSTED_KEYS (":"-separated PEM files: the public keys audit checkpoints are signed with)`

function client(env: NodeJS.ProcessEnv, flags: { url?: string | undefined, token?: string | undefined }): WritClient {
  // An empty variable counts as unset.
  const token = flags.token || env.WRIT_TOKEN || env.WRIT_AGENT_TOKEN
  if (!token) throw new UsageError('set WRIT_TOKEN (or WRIT_AGENT_TOKEN) or pass --token')
  return new WritClient(flags.url ?? env.WRIT_URL ?? 'http://127.0.0.1:8480', token)
}

const EXIT_OF: Record<string, number> = { succeeded: EXIT.ok, failed: EXIT.failed, pending_approval: EXIT.pending, denied: EXIT.denied }

async function cmdRun(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    node: { type: 'string' }, arg: { type: 'string', multiple: true, default: [] }, reason: { type: 'string' },
    session: { type: 'string' }, json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' },
    select: { type: 'string' }, nodes: { type: 'string' },
  } })
  const action = positionals[0]
  const plan = values.select !== undefined || values.nodes !== undefined
  if (!action || (!values.node && !plan) || !values.reason) throw new UsageError('writ run needs <action>, --node (or --select / --nodes) and --reason')
  if (plan && values.node) throw new UsageError('writ run takes one of --node, --select or --nodes')
  const c = client(io.env, values)
  const contract = (await c.request('GET', `/v1/actions/${encodeURIComponent(action)}`)).json as { args: Array<{ name: string, type: string }> }
  if (plan) {
    return cmdRunPlan(c, io, { action, args: typedArgs(values.arg ?? [], contract.args), reason: values.reason, session: values.session, select: values.select, nodes: values.nodes, json: values.json ?? false })
  }
  const body = { action, node: values.node, args: typedArgs(values.arg ?? [], contract.args), reason: values.reason, ...(values.session ? { session_id: values.session } : {}) }
  const created = (await c.request('POST', '/v1/runs', body)).json as { id: string, status: string, status_reason: string, approval?: { url: string, expires_at: string } }
  io.err(`run ${terminalLine(created.id)}: ${terminalLine(created.status)}\n`)
  if (created.status === 'pending_approval') {
    // A person decides, maybe much later: say where, and do not hold the terminal.
    const id = terminalLine(created.id)
    const until = `${terminalLine(created.approval?.expires_at ?? '?')}: ${terminalLine(created.approval?.url ?? '')}`
    io.err(`run ${id} waits for approval until ${until}\n  ${terminalLine(created.status_reason)}\n  check on it with: writ status ${id} --wait 60\n`)
    if (values.json) io.out(`${terminalJson(created)}\n`)
    return EXIT_OF.pending_approval as number
  }
  // A command's output is printed as it comes, escaped: it must not drive the terminal either.
  const { run, printedChunks } = await c.follow(created.id, (stream, data) => (stream === 'stdout' ? io.out : io.err)(terminalBlock(data)))
  if (printedChunks === 0 && run.result) {
    // Live chunks are best effort; the recorded output is authoritative.
    if (run.result.stdout) io.out(terminalBlock(run.result.stdout))
    if (run.result.stderr) io.err(terminalBlock(run.result.stderr))
  }
  if (values.json) io.out(`${terminalJson(run)}\n`)
  io.err(`run ${terminalLine(run.id)}: ${run.status} — ${terminalLine(run.status_reason)}\n`)
  return EXIT_OF[run.status] ?? 2
}

async function cmdStatus(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { wait: { type: 'string', default: '0' }, json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' } } })
  const id = positionals[0]
  if (!id || !/^\d{1,4}$/.test(values.wait ?? '0')) throw new UsageError('writ status <run-id> [--wait SECONDS]')
  const run = await client(io.env, values).run(id, Number(values.wait))
  if (values.json) io.out(`${terminalJson(run)}\n`)
  else io.out(`run ${terminalLine(run.id)}: ${run.status} — ${terminalLine(run.status_reason)}\n`)
  return EXIT_OF[run.status] ?? (isTerminal(run.status) ? EXIT.error : EXIT.running)
}

async function cmdNodes(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' } } })
  const { json } = await client(io.env, values).request('GET', '/v1/nodes')
  const nodes = (json as { nodes: Array<{ id: string, name: string, online: boolean, last_seen: string, packs: Array<{ id: string, matches_catalog: boolean }> }> }).nodes
  if (values.json) { io.out(`${terminalJson(nodes, 2)}\n`); return 0 }
  // A node's name comes from its own heartbeat: escaped like any text from elsewhere.
  for (const n of nodes) {
    const packs = n.packs.map((p) => `${terminalLine(p.id)}${p.matches_catalog ? '' : '(digest differs)'}`).join(', ')
    io.out(`${n.online ? 'online ' : 'OFFLINE'}  ${terminalLine(n.name).padEnd(24)} ${terminalLine(n.id).padEnd(24)} packs: ${packs}\n`)
  }
  if (nodes.length === 0) io.err('no node has sent a heartbeat yet\n')
  return 0
}

async function cmdActions(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    node: { type: 'string' }, risk: { type: 'string' }, json: { type: 'boolean', default: false }, url: { type: 'string' }, token: { type: 'string' },
  } })
  const q = new URLSearchParams()
  if (positionals.length) q.set('q', positionals.join(' '))
  if (values.node) q.set('node', values.node)
  if (values.risk) q.set('risk', values.risk)
  const { json } = await client(io.env, values).request('GET', `/v1/actions?${q}`)
  const actions = (json as { actions: Array<{ id: string, risk: string, title: string }> }).actions
  if (values.json) { io.out(`${terminalJson(actions, 2)}\n`); return 0 }
  for (const a of actions) io.out(`${terminalLine(a.id).padEnd(36)} ${terminalLine(a.risk).padEnd(8)} ${terminalLine(a.title)}\n`)
  return 0
}

function cmdKeys(argv: string[], io: Io): number {
  if (argv[0] === 'session') {
    const { values } = parseArgs({ args: argv.slice(1), options: { out: { type: 'string' } } })
    if (!values.out) throw new UsageError('writ keys session --out FILE')
    if (existsSync(values.out)) throw new UsageError(`${values.out} exists; refusing to overwrite a session key (every replica must share one)`)
    writeFileSync(values.out, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
    io.out(`portal session key (portal.session_key_file, the same on every replica): ${values.out}\n`)
    return 0
  }
  const kind = argv[0]
  if (kind !== 'generate' && kind !== 'approvers') throw new UsageError('writ keys generate [--out DIR] | writ keys session --out FILE | writ keys approvers [--out DIR]')
  const { values } = parseArgs({ args: argv.slice(1), options: { out: { type: 'string', default: '.' } } })
  const dir = values.out ?? '.'
  mkdirSync(dir, { recursive: true })
  const k = generateSigningKeyPair()
  const name = kind === 'generate' ? 'writ-signing' : 'writ-approvers'
  const priv = join(dir, `${name}.pem`)
  const pub = join(dir, `${name}.pub.pem`)
  if (existsSync(priv)) throw new UsageError(`${priv} exists; refusing to overwrite a signing key`)
  writeFileSync(priv, k.privatePem, { mode: 0o600 })
  chmodSync(priv, 0o600)
  writeFileSync(pub, k.publicPem)
  io.out(kind === 'generate'
    ? `key id ${k.keyId}\nprivate key (control plane, signing.key_file): ${priv}\npublic key (runners, trustedKeys): ${pub}\n`
    : `key id ${k.keyId}\nprivate key (signs the approver registry: writ approvers export --key; keep it offline, never on the control plane): ${priv}\npublic key (runners --approvers-key, control plane passkeys.approvers_key_file): ${pub}\n`)
  return 0
}

function cmdToken(argv: string[], io: Io): number {
  if (argv[0] !== 'generate') throw new UsageError('writ token generate [--kind agent|operator]')
  const { values } = parseArgs({ args: argv.slice(1), options: { kind: { type: 'string', default: 'agent' } } })
  if (values.kind !== 'agent' && values.kind !== 'operator') throw new UsageError('--kind is agent or operator')
  const token = generateToken(values.kind)
  io.out(`token:        ${token}\ntoken_sha256: ${hashToken(token)}   (put this in principals[].token_sha256)\n`)
  return 0
}

/** The usage lines of one command (`writ dev --help`), or all of them. */
function usageOf(cmd: string | undefined): string {
  const lines = USAGE.split('\n')
  const mine: string[] = []
  let owner: string | undefined
  for (const l of lines) {
    // A command's line, and the indented lines that carry on its notes.
    if (/^ {2}writ /.test(l)) owner = l.split(' ')[3]
    else if (!/^ {20,}\S/.test(l)) owner = undefined
    if (owner === cmd) mine.push(l)
  }
  return mine.length > 0 ? `usage:\n${mine.join('\n')}\n\n${lines.slice(lines.findIndex((l) => l.startsWith('exit codes:'))).join('\n')}` : USAGE
}

/** Asks the person at the terminal (stderr, so stdout stays the command's answer). */
async function askTerminal(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try { return await rl.question(question) } finally { rl.close() }
}

const DEFAULT_IO: Io = {
  out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env,
  interactive: process.stdin.isTTY === true, ask: askTerminal,
}

/** Runs one CLI invocation; resolves with the exit code. */
export async function runCli(argv: string[], io: Io = DEFAULT_IO): Promise<number> {
  const [cmd, ...rest] = argv
  // `writ <command> --help` prints that command's usage and does nothing else (`writ dev --help` starts nothing).
  if (cmd !== undefined && (rest.includes('--help') || rest.includes('-h'))) { io.out(`${usageOf(cmd)}\n`); return EXIT.ok }
  try {
    switch (cmd) {
      case 'run': return await cmdRun(rest, io)
      case 'nodes': return await cmdNodes(rest, io)
      case 'actions': return await cmdActions(rest, io)
      case 'status': return await cmdStatus(rest, io)
      case 'show': return await cmdShow(rest, io)
      case 'plan': return await cmdPlan(rest, io, (values) => client(io.env, values))
      case 'pending': return await cmdPending(rest, io)
      case 'approve': return await cmdDecide('approve', rest, io)
      case 'deny': return await cmdDecide('deny', rest, io)
      case 'grant': return await cmdGrant(rest, io)
      case 'grants': return await cmdGrants(rest, io)
      case 'revoke': return await cmdRevoke(rest, io)
      case 'break-glass': return await cmdBreakGlass(rest, io)
      case 'reviews': return await cmdReviews(rest, io)
      case 'ack': return await cmdAck(rest, io)
      case 'freeze': return await cmdFreeze(rest, io)
      case 'unfreeze': return await cmdUnfreeze(rest, io)
      case 'freezes': return await cmdFreezes(rest, io)
      case 'audit': return await cmdAudit(rest, io)
      case 'keys': return cmdKeys(rest, io)
      case 'approvers': return await cmdApprovers(rest, io)
      case 'nats':
        if (rest[0] !== 'permissions') throw new UsageError('writ nats permissions')
        io.out(`${nscCommands()}\n`)
        return 0
      case 'token': return cmdToken(rest, io)
      case 'serve': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } })
        const file = values.config ?? io.env.WRIT_CONFIG
        if (!file) throw new UsageError('writ serve --config FILE')
        await serve(file)
        return -1
      }
      case 'dev': return await cmdDev(rest, io)
      case undefined: case 'help': case '--help': case '-h':
        io.out(`${USAGE}\n`)
        return cmd === undefined ? 2 : 0
      default: throw new UsageError(`unknown command "${cmd}"`)
    }
  } catch (err) {
    // A usage error is one line that says what is wrong and where the usage is.
    if (err instanceof UsageError) { io.err(`writ: ${err.message} (see writ ${cmd && cmd !== 'help' ? `${cmd} ` : ''}--help)\n`); return EXIT.error }
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) { io.err(`writ: ${(err as Error).message} (see writ ${cmd} --help)\n`); return EXIT.error }
    if (err instanceof ApiError) { io.err(`writ: ${err.code}: ${err.message}\n`); return 2 }
    if (err instanceof ConfigError) { io.err(`writ: ${err.message}\n`); return 2 }
    const e = err as Error
    io.err(`writ: ${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ''}\n`)
    return 2
  }
}
