/**
 * `writ dev`: starts the dev stack (dev-stack.ts) and tells the user how to
 * reach it — the portal's sign-in link, the MCP command for Claude Code, the
 * tokens for scripts — then runs until Ctrl-C.
 */
import { parseArgs } from 'node:util'
import { UsageError, type Io } from './cli-io.js'
import { terminalBlock, terminalLine } from './terminal-text.js'

/** The packs `--packs` added, named when they are few. */
function addedPacksText(ids: readonly string[]): string {
  if (ids.length === 0) return ''
  return ids.length <= 6 ? ` and ${ids.map(terminalLine).join(', ')} (--packs)` : ` and ${ids.length} packs from --packs`
}

export async function cmdDev(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' }, 'state-dir': { type: 'string' }, 'start-nats': { type: 'boolean', default: false },
      packs: { type: 'string', multiple: true }, 'allow-shell-packs': { type: 'boolean', default: false },
    },
  })
  if (values.port !== undefined && !/^\d{1,5}$/.test(values.port)) throw new UsageError(`writ dev --port takes a port number (0 for any free port), not "${values.port}"`)
  let startDevStack: typeof import('./dev-stack.js').startDevStack
  try { ({ startDevStack } = await import('./dev-stack.js')) } catch {
    throw new UsageError('writ dev runs from a source checkout (npm run dev); a release executable serves a configured control plane: writ serve --config FILE')
  }
  const stack = await startDevStack({
    ...(values.port ? { port: Number(values.port) } : {}), ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}), startNats: values['start-nats'],
    packDirs: values.packs ?? [], allowShellPacks: values['allow-shell-packs'],
    out: (l) => io.err(`${l}\n`),
  })
  const stateDir = values['state-dir'] ?? '.writ'
  io.out([
    '',
    `writ is running at ${stack.url} — control plane, NATS at ${stack.natsUrl}, and a node-runner for this host ("${stack.nodeName}", node id ${stack.nodeId}) with the stock packs${addedPacksText(stack.addedPacks)}.`,
    '',
    `debugging.loadavg on ${stack.nodeName}, through the whole path (agent → policy → signed writ → runner → audit): ${stack.firstRun.status}`,
    `  ${terminalBlock(stack.firstRun.stdout.trim())}`,
    '',
    `Operator portal (approvals, runs, audit): ${stack.url}/ui — sign in once with this link (valid 15 min, one use):`,
    `  ${stack.signInLink}`,
    '',
    `Agents over MCP (${stack.url}/mcp) as the dev agent — for Claude Code, paste:`,
    `  claude mcp add --transport http writ ${stack.url}/mcp --header "Authorization: Bearer ${stack.agentToken}"`,
    `or through OAuth, as dev-oauth-agent (Claude Code opens the portal; sign in as dev-operator and allow):`,
    `  claude mcp add --transport http writ ${stack.url}/mcp`,
    '',
    `Tokens and URL for scripts: ${stateDir}/dev.env (WRIT_URL, WRIT_AGENT_TOKEN, WRIT_OPERATOR_TOKEN). Try:`,
    '',
    `  set -a; . ${stateDir}/dev.env; set +a`,
    `  curl -s -H "Authorization: Bearer $WRIT_AGENT_TOKEN" -H 'content-type: application/json' \\`,
    `    -d '{"action":"debugging.dmesg_tail","node":"${stack.nodeName}","args":{"since":"1h"},"reason":"look at the kernel log","wait":10}' $WRIT_URL/v1/runs`,
    `  npm run -s writ -- run debugging.disk_free --node ${stack.nodeName} --reason "check space"`,
    `  npm run -s writ -- audit verify --witness ${stateDir}/runner-journal.jsonl`,
    '',
    `Logs: ${stateDir}/control-plane.log, ${stateDir}/runner.log. Ctrl-C stops everything.`,
    '',
  ].join('\n'))
  await new Promise<void>((resolveStop) => {
    const stop = (): void => { io.err('writ dev: stopping…\n'); void stack.stop().then(resolveStop, resolveStop) }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  return 0
}
